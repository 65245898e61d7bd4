/* Preloaded after the sanitizer runtimes by scripts/asan.sh: takes LD_PRELOAD out of the
 * environment once the interpreter has started, so the programs the specs run (sh, curl,
 * node, python3 ...) start without the sanitizers (they are not ours; some hang or report
 * their own leaks under them). A spec that starts a Lua child on the ASan build gives
 * it RIVET_ASAN_PRELOAD back as LD_PRELOAD (spec/dns_block_spec.lua). */
#include <stdlib.h>

__attribute__((constructor)) static void rv_unpreload(void) {
  const char *p = getenv("LD_PRELOAD");
  if (!p) return;
  setenv("RIVET_ASAN_PRELOAD", p, 1);
  unsetenv("LD_PRELOAD");
}
