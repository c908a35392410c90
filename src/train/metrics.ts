/** Classification metrics: top-k accuracy and the confusion matrix (rows: true class, columns: predicted). */

export interface EvalMetrics {
  n: number;
  top1: number;
  top5: number;
  loss: number;
  confusion: number[][];
}

export class MetricsAccumulator {
  private n = 0;
  private c1 = 0;
  private c5 = 0;
  private lossSum = 0;
  readonly confusion: number[][];

  constructor(readonly numClasses: number) {
    this.confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  }

  /** logits: [N, K] row-major; labels: [N]; loss: mean over the batch. */
  add(logits: ArrayLike<number>, labels: ArrayLike<number>, meanLoss: number): void {
    const k = this.numClasses;
    const n = labels.length;
    for (let r = 0; r < n; r++) {
      const y = labels[r];
      const row = Array.from({ length: k }, (_, j) => logits[r * k + j]);
      let best = 0;
      for (let j = 1; j < k; j++) if (row[j] > row[best]) best = j;
      // rank of the true class = number of classes scoring strictly higher
      const rank = row.filter((v) => v > row[y]).length;
      if (best === y) this.c1++;
      if (rank < 5) this.c5++;
      this.confusion[y][best]++;
    }
    this.n += n;
    this.lossSum += meanLoss * n;
  }

  result(): EvalMetrics {
    const n = Math.max(1, this.n);
    return { n: this.n, top1: this.c1 / n, top5: this.c5 / n, loss: this.lossSum / n, confusion: this.confusion };
  }
}
