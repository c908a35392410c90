export {
  DEFAULT_BATCH_SIZE,
  DEFAULT_TOPK,
  ImageInput,
  ItemResult,
  Prediction,
  PredictJob,
  Predictor,
  PredictorLoadOptions,
  PredictorOptions,
  runTolerant,
} from './predictor';
export { BatchRunner, createRunner, localRunner, pipeline, poolRunner, resolveWorkers } from './runner';
export { imagenet1kLabels, readLabelsFile, resolveLabels } from './labels';
