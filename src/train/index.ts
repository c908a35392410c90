export { AdamW, AdamWOptions, ParamGroup } from './adamw';
export {
  RRC_RATIO,
  RRC_SCALE,
  TRIVIAL_AUGMENT_OPS,
  TrainTransformOptions,
  flipHorizontal,
  mixBatch,
  randomResizedCrop,
  randomResizedCropParams,
  trainTransform,
  trivialAugment,
} from './augment';
export {
  AUTO_AUGMENT_FORMS,
  AutoAugmentPolicy,
  RAND_AUGMENT_INCREASING_OPS,
  RAND_AUGMENT_OPS,
  RandAugmentPolicy,
  parseAutoAugment,
  randAugment,
} from './rand_augment';
export { Batch, ImageFolder, Sample, batches, scanImageFolder, splitTrainVal } from './dataset';
export { ModelEma } from './ema';
export { convnextLayerId, layerDecayScale, paramGroups } from './layer_decay';
export { smoothOneHot, softCrossEntropy } from './loss';
export { EvalMetrics, MetricsAccumulator } from './metrics';
export { cosineLr } from './schedule';
export { EvaluateOptions, evaluate } from './evaluate';
export { EpochRecord, TrainEvent, TrainOptions, TrainReport, train } from './trainer';
export { REQUIRED_TRAIN_OPTIONS, ResolvedTrainOptions, TRAIN_DEFAULTS, defaultRunDir, recipeLr, validateTrainOptions, withTrainDefaults } from './options';
