export const ADAPTER_FORMAT = 'aligner/1';

/** SPEC §2: N prefix tokens are 1 to 64; a file claiming more is refused before its tensors are read. */
export const MAX_TOKENS = 64;

/** The string metadata of an adapter file (SPEC §5), typed; numbers are stored as decimal strings. */
export interface AdapterMetadata {
  format: typeof ADAPTER_FORMAT;
  base_model: string;
  base_fingerprint: string;
  /** Storage of the base it was trained on (f32, q8, q4); absent in files from before quantization. */
  quantization?: string;
  tokens: number;
  start_layer: number;
  method: 'sft' | 'dpo';
  examples: number;
  epochs: number;
  /** Final losses; null when not measured (e.g. no validation split). */
  train_loss: number | null;
  val_loss: number | null;
  /** ISO 8601. */
  date: string;
  /** Free-form fields (name, description, data source…), stored as they are. */
  extra: Record<string, string>;
}

/** What the caller supplies when writing; format, tokens and start_layer come from the weights. */
export type AdapterSummary = Omit<AdapterMetadata, 'format' | 'tokens' | 'start_layer'>;

/** What compatibility depends on (see fit.ts): the tensors' shapes, the start layer and the base model. */
export interface AdapterLayout {
  tokens: number;
  startLayer: number;
  prefixShape: readonly number[];
  gatesShape: readonly number[];
  /** From the file's metadata; absent for weights that only exist in memory. */
  base?: { model: string; fingerprint: string };
}

/** The trainable parameters of one Aligner adapter (SPEC §2). */
export interface AdapterWeights {
  /** [tokens, hiddenSize], row-major. */
  prefix: Float32Array;
  /** [numLayers - startLayer, numHeads], row-major. */
  gates: Float32Array;
  tokens: number;
  startLayer: number;
}

/** An adapter file's validated header: what listing needs, without reading the tensors. */
export interface AdapterHeader {
  metadata: AdapterMetadata;
  layout: AdapterLayout;
}

export interface AdapterFile extends AdapterWeights, AdapterHeader {}
