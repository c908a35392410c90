export { AdamW, AdamWOptions, ParamGroup } from './adamw';
export { TRIVIAL_AUGMENT_OPS, flipHorizontal, mixBatch, randomResizedCrop, randomResizedCropParams, trainTransform, trivialAugment } from './augment';
export { Batch, ImageFolder, Sample, batches, scanImageFolder, splitTrainVal } from './dataset';
export { ModelEma } from './ema';
export { convnextLayerId, layerDecayScale, paramGroups } from './layer_decay';
export { smoothOneHot, softCrossEntropy } from './loss';
export { EvalMetrics, MetricsAccumulator } from './metrics';
export { cosineLr } from './schedule';
export { EpochRecord, TrainEvent, TrainOptions, TrainReport, evaluate, train } from './trainer';
