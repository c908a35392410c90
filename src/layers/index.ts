export { depthwiseConv } from './depthwise_conv';
export { downsample } from './downsample';
export { dropPath, dropPathSchedule } from './drop_path';
export { gelu } from './gelu';
export { grn } from './grn';
export { layerNorm } from './layer_norm';
export { layerScale } from './layer_scale';
export { linear } from './linear';
export { stem } from './stem';
