export * from './configs';
export { ConvNeXt, CreateModelOptions, ForwardOptions, createModel, parameterSpecs } from './convnext';
export { Init, ParamInfo, ParamSpec, ParamStore } from '../layers/params';
