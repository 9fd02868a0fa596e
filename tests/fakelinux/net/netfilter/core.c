/* fake */
int nf_hook_slow(void) { return 0; }
