export * from './configs';
export { ConvNeXt, CreateModelOptions, ForwardOptions, createModel } from './convnext';
export { Init, ParamInfo, ParamStore } from './params';
