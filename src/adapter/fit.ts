import * as path from 'path';
import { AdapterMismatchError } from './errors';
import type { BaseModel } from '../model/types';
import type { AdapterFile } from './types';

/** Refuses an adapter trained for another base model, or whose shapes do not fit this one. */
export function checkAdapterFits(adapter: AdapterFile, model: BaseModel, file: string): void {
  const label = `adapter "${path.basename(file)}"`;
  const meta = adapter.metadata;
  if (meta.base_fingerprint !== model.fingerprint) {
    throw new AdapterMismatchError(
      `${label} was trained for base model "${meta.base_model}" (fingerprint ${meta.base_fingerprint}), ` +
        `not for "${model.name}" (fingerprint ${model.fingerprint})`,
    );
  }
  const { hiddenSize, numLayers, numHeads } = model.config;
  if (adapter.startLayer >= numLayers) {
    throw new AdapterMismatchError(`${label}: start layer ${adapter.startLayer} is beyond the model's ${numLayers} layers`);
  }
  if (adapter.prefix.length !== adapter.tokens * hiddenSize) {
    throw new AdapterMismatchError(
      `${label}: tensor "prefix" has ${adapter.prefix.length / adapter.tokens} columns, but "${model.name}" has hidden size ${hiddenSize}`,
    );
  }
  const expected = (numLayers - adapter.startLayer) * numHeads;
  if (adapter.gates.length !== expected) {
    throw new AdapterMismatchError(
      `${label}: tensor "gates" has ${adapter.gates.length} values, expected [${numLayers - adapter.startLayer}, ${numHeads}] ` +
        `for "${model.name}" (${numLayers} layers from start layer ${adapter.startLayer}, ${numHeads} heads)`,
    );
  }
}
