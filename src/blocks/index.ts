export { BlockOptions, ConvNeXtBlock, ForwardContext } from './convnext_block';
export { ConvNeXtStage, StageOptions } from './stage';
