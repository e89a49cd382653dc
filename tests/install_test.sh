#!/usr/bin/env bash
# install_test.sh — `cmake --install` into a temporary prefix, then build a program against the
# installed heed.h through pkg-config, shared and static, and run both.
# Usage: install_test.sh BUILD_DIR C_COMPILER
set -euo pipefail
build="$1" cc="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
pc=$(dirname "$(find "$tmp/prefix" -name heed.pc | head -1)")
export PKG_CONFIG_PATH="$pc"
libdir=$(pkg-config --variable=libdir heed)
cat >"$tmp/use.c" <<'C'
#include <heed.h>
#include <stdio.h>
int main(void)
{
    heed_ctx *ctx = NULL;
    if (heed_ctx_create(&ctx, 1) != HEED_OK) return 1;
    float q[4] = {1, 0, 0, 0}, k[8] = {1, 0, 0, 0, 0, 1, 0, 0}, v[8] = {1, 2, 3, 4, 5, 6, 7, 8}, o[4];
    heed_attn_desc d;
    heed_attn_desc_init(&d);
    d.q = heed_tensor_4d(q, HEED_F32, 1, 1, 1, 4);
    d.k = heed_tensor_4d(k, HEED_F32, 1, 1, 2, 4);
    d.v = heed_tensor_4d(v, HEED_F32, 1, 1, 2, 4);
    heed_tensor out = heed_tensor_4d(o, HEED_F32, 1, 1, 1, 4);
    heed_status s = heed_attn_forward(ctx, &out, NULL, &d);
    printf("heed %s: %s o[0]=%.4f\n", heed_version(), heed_status_name(s), o[0]);
    heed_ctx_free(ctx);
    return s != HEED_OK;
}
C
"$cc" "$tmp/use.c" $(pkg-config --cflags --libs heed) -Wl,-rpath,"$libdir" -o "$tmp/use_shared"
"$cc" "$tmp/use.c" $(pkg-config --cflags heed) "$libdir/libheed.a" \
    $(pkg-config --static --libs-only-l heed | sed 's/-lheed//') -o "$tmp/use_static"
"$tmp/use_shared" && "$tmp/use_static"
echo "1 passed, 0 failed"
