// The shape of a Llama-family decoder as the graph builders see it. kernels/
// depends on nothing but ONNX and itself, so src/model's ModelConfig extends
// this instead of kernels importing it.

/** Meta/llama2.c rotate interleaved pairs (2i, 2i+1); Hugging Face rotates halves (j, j + d_h/2). */
export type RopeLayout = 'half' | 'interleaved';

export interface DecoderConfig {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeLayout: RopeLayout;
  tieWordEmbeddings: boolean;
}
