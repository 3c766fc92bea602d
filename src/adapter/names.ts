// Adapter names: what people may call an adapter (it becomes `<name>.safetensors`
// in a library folder). The worker checks them on import, delete and training; the
// extension checks them as they are typed.

export function isValidAdapterName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$/.test(name) && !name.includes('..');
}
