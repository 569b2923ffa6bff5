#!/usr/bin/env bash
# Fashion-MNIST for benchmarks/bench_fashion.py: the Debian package dataset-fashion-mnist puts the genuine
# 60k/10k set under /usr/share/datasets/fashion-mnist/. Installs it if missing (needs root); never fails the
# caller: bench_fashion.py reports clearly when the data is absent.
dir=${NAS_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
if [ -f "$dir/train-images-idx3-ubyte.gz" ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >&2 \
    || echo "warning: could not install dataset-fashion-mnist" >&2
else
  echo "warning: Fashion-MNIST is not in $dir; run: sudo apt-get install dataset-fashion-mnist" >&2
fi
exit 0
