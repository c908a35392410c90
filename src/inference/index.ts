export { DEFAULT_PREPROCESSING, ImageInput, ItemResult, Prediction, Predictor, PredictorLoadOptions, PredictorOptions, runTolerant } from './predictor';
export { imagenet1kLabels, readLabelsFile, resolveLabels } from './labels';
