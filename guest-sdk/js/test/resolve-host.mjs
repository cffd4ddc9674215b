// The resolve hook that register.mjs installs: the WIT host interface
// becomes host.mjs; every other specifier resolves as usual.
const HOST = 'wasmproc:process/host@0.1.0';

export async function resolve(specifier, context, nextResolve) {
  if (specifier === HOST) {
    return { url: new URL('./host.mjs', import.meta.url).href, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
