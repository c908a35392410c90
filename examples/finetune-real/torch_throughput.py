#!/usr/bin/python3
"""PyTorch training throughput of the same ConvNeXt on the same images, for comparison.

Trains torchvision's ConvNeXt with convnext_atto's configuration (dims 40/80/160/320, depths
2/2/6/2, layer scale 1e-6, stochastic depth as given, num_classes = number of class folders) with
AdamW (weight decay 0.05) and label-smoothed cross-entropy, on the train folder through the
torchvision pipeline that convnext-tfjs's trainer mirrors:
    RandomResizedCrop(S, bicubic) -> RandomHorizontalFlip [-> TrivialAugmentWide] -> ToTensor -> Normalize
at the same batch size, for a fixed number of optimizer steps, with torch.set_num_threads(T) for
each T given.

Threads: Debian's torch has no MKL; its Linear layers' GEMMs go to OpenBLAS (pthreads), whose
thread pool torch.set_num_threads does NOT control (it defaults to all cores). So by default the
BLAS is pinned to 1 thread here (through openblas_set_num_threads): "T threads" = T torch
(OpenMP/oneDNN) threads + 1 BLAS thread, and T=1 is truly single-threaded, like convnext-tfjs's
wasm backend. On this 2-core machine, 2 torch threads + 2 BLAS threads oversubscribe and run at
about half the speed of 1 thread. --untuned also measures each T with the BLAS left at its default
thread count (what plain torch.set_num_threads(T) gives). The CPU seconds per wall second of the
full loop are recorded to show how many cores a configuration really used.

Numbers per configuration:
  * train_images_per_s: the whole training loop, including JPEG decoding and augmentation in the
    main process (DataLoader num_workers=0), as convnext-tfjs's loader does in its one thread;
  * compute_images_per_s: forward + backward + AdamW step on one pre-built batch (no data loading).
A few warm-up steps are run and not timed; each measurement is repeated (--repeats) and the
median repeat reported (the best and all repeats kept). Prints one JSON object on stdout.

Usage: /usr/bin/python3 torch_throughput.py <train dir> [--image-size 64] [--batch-size 32]
       [--steps 20] [--repeats 3] [--threads 1 2] [--drop-path 0.1] [--lr 2e-3] [--no-trivial-augment] [--untuned]
"""
import argparse
import ctypes
import ctypes.util
import json
import resource
import statistics
import platform
import sys
import time
from functools import partial

import torch
import torchvision
from torchvision import datasets, transforms
from torchvision.models.convnext import CNBlockConfig, ConvNeXt


def blas_library():
    """The BLAS torch calls for matmuls when it is built without MKL (Debian: BLAS_INFO=generic ->
    libblas.so.3 -> OpenBLAS, pthreads). Its thread pool is NOT governed by torch.set_num_threads, so
    without this, "1 thread" would still run the Linear layers' GEMMs on all cores, and "2 threads"
    would oversubscribe (OpenMP x OpenBLAS threads)."""
    for name in ('libblas.so.3', ctypes.util.find_library('openblas')):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            if hasattr(lib, 'openblas_set_num_threads'):
                return lib
        except OSError:
            pass
    return None


BLAS = blas_library()


BLAS_DEFAULT_THREADS = BLAS.openblas_get_num_threads() if BLAS is not None else None


def set_threads(n: int, blas: int | None) -> None:
    torch.set_num_threads(n)
    if BLAS is not None and blas is not None:
        BLAS.openblas_set_num_threads(blas)


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def atto(num_classes: int, drop_path: float) -> ConvNeXt:
    dims, depths = [40, 80, 160, 320], [2, 2, 6, 2]
    setting = [CNBlockConfig(d, dims[i + 1] if i < 3 else None, n) for i, (d, n) in enumerate(zip(dims, depths))]
    return ConvNeXt(setting, stochastic_depth_prob=drop_path, layer_scale=1e-6, num_classes=num_classes)


def param_groups(model: torch.nn.Module, wd: float):
    # As convnext-tfjs (and timm): no weight decay on norms, biases, layer scale (1-D parameters).
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{'params': decay, 'weight_decay': wd}, {'params': no_decay, 'weight_decay': 0.0}]


def run(a, threads: int, blas_threads: int | None, dataset) -> dict:
    set_threads(threads, blas_threads)
    torch.manual_seed(a.seed)
    model = atto(len(dataset.classes), a.drop_path)
    model.train()
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=a.lr)
    crit = torch.nn.CrossEntropyLoss(label_smoothing=a.smoothing)
    g = torch.Generator()
    g.manual_seed(a.seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=a.batch_size, shuffle=True, drop_last=True, num_workers=0, generator=g)

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    def batches():
        while True:
            for b in loader:
                yield b

    it = batches()
    # Warm-up (allocator, first-call overheads), not timed.
    for _ in range(a.warmup):
        step(*next(it))

    cpu_use = []

    def full():  # data loading + augmentation + step
        t = time.perf_counter()
        c = cpu_seconds()
        n = 0
        for _ in range(a.steps):
            x, y = next(it)
            step(x, y)
            n += x.shape[0]
        wall = time.perf_counter() - t
        cpu_use.append((cpu_seconds() - c) / wall)  # cores busy on average: ~threads when not starved
        return n / wall

    def loading():  # data loading alone, for the breakdown
        t = time.perf_counter()
        m = 0
        for _ in range(a.steps):
            m += next(it)[0].shape[0]
        return m / (time.perf_counter() - t)

    xb, yb = next(it)

    def compute():  # one pre-built batch
        t = time.perf_counter()
        for _ in range(a.steps):
            step(xb, yb)
        return a.steps * xb.shape[0] / (time.perf_counter() - t)

    # Repeats, interleaved; the median of each is reported (the machine may be shared), the best
    # and all values kept.
    runs = {'train': [], 'compute': [], 'loading': []}
    for _ in range(a.repeats):
        runs['train'].append(full())
        runs['compute'].append(compute())
        runs['loading'].append(loading())
    return {
        'threads': threads,
        'steps': a.steps,
        'repeats': a.repeats,
        'train_images_per_s': statistics.median(runs['train']),
        'compute_images_per_s': statistics.median(runs['compute']),
        'loading_images_per_s': statistics.median(runs['loading']),
        'best': {k: max(v) for k, v in runs.items()},
        'all_repeats': runs,
        'cpu_seconds_per_wall_second': cpu_use,
        'blas_threads': BLAS.openblas_get_num_threads() if BLAS is not None else None,
        'config': f'torch {threads} thread(s)' + ('' if BLAS is None else ', BLAS 1 thread' if blas_threads == 1 else f', BLAS default ({blas_threads} threads)'),
        'params': sum(p.numel() for p in model.parameters()),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('train_dir')
    ap.add_argument('--image-size', type=int, default=64)
    ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--steps', type=int, default=20, help='optimizer steps per timed repeat')
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--repeats', type=int, default=3, help='timed repeats of each measurement; the median is reported')
    ap.add_argument('--threads', type=int, nargs='+', default=[1, 2], help='torch threads (the BLAS pinned to 1 thread)')
    ap.add_argument('--untuned', action='store_true', help='also each T with the BLAS at its default thread count')
    ap.add_argument('--drop-path', type=float, default=0.1)
    ap.add_argument('--smoothing', type=float, default=0.1)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--no-trivial-augment', dest='trivial_augment', action='store_false', help='as convnext train --no-trivial-augment')
    a = ap.parse_args()

    tf = transforms.Compose([
        transforms.RandomResizedCrop(a.image_size, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.RandomHorizontalFlip(),
        *([transforms.TrivialAugmentWide()] if a.trivial_augment else []),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    dataset = datasets.ImageFolder(a.train_dir, transform=tf)  # PIL loader: .convert('RGB')
    configs = [(t, 1) for t in a.threads]
    if a.untuned and BLAS is not None and BLAS_DEFAULT_THREADS != 1:
        configs += [(t, BLAS_DEFAULT_THREADS) for t in a.threads]
    results = [run(a, t, b, dataset) for t, b in configs]
    for r in results:
        print(f"{r['config']}: {r['train_images_per_s']:.1f} img/s training incl. data loading, "
              f"{r['compute_images_per_s']:.1f} img/s compute only, loading alone {r['loading_images_per_s']:.1f} img/s, "
              f"{max(r['cpu_seconds_per_wall_second']):.2f} CPU s per wall s", file=sys.stderr)
    print(json.dumps({
        'torch': torch.__version__, 'torchvision': torchvision.__version__, 'python': platform.python_version(),
        'mkldnn': torch.backends.mkldnn.is_available(), 'blas': f'OpenBLAS (default {BLAS_DEFAULT_THREADS} threads)' if BLAS is not None else 'not found (MKL or internal)', 'arch': 'convnext_atto (torchvision ConvNeXt)',
        'image_size': a.image_size, 'batch_size': a.batch_size, 'trivial_augment': a.trivial_augment, 'images': len(dataset), 'classes': dataset.classes,
        'results': results,
    }))
    return 0


if __name__ == '__main__':
    sys.exit(main())
