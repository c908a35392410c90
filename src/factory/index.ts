/** The one way in: the name rule, createModel (architectures, pretrained) and loadModel (any source). */
export { BuildModelOptions, buildModel } from './build';
export { CreateModelOptions, createModel } from './create';
export { LoadModelOptions, LoadProgress, loadModel } from './load';
export { ModelName, archOf, parseModelName } from './names';
