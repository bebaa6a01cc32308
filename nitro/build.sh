#!/usr/bin/env bash
# Build one Kalypso enclave image for AWS Nitro and print its measurements and image id.
#
#   nitro/build.sh matcher
#   nitro/build.sh generator|pvs|ivs CIRCUIT
#
# Needs Docker and nitro-cli (aws-nitro-enclaves-cli), and `make setup` done (the
# contracts' ABIs are build outputs the images carry). Writes build/nitro/IMAGE.eif and
# IMAGE.json (nitro-cli's output) and prints PCR0-2 and the Kalypso image id that markets
# (or `kalypso deploy --matching-engine-image`) authorize. Same commit, same PCRs.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${1:-}
case "$image" in
  matcher|generator|pvs|ivs) ;;
  *) echo "usage: nitro/build.sh matcher | nitro/build.sh generator|pvs|ivs CIRCUIT" >&2; exit 2 ;;
esac
circuit=${2:-}
if [ "$image" = matcher ] && [ -n "$circuit" ]; then
  echo "the matcher image has no circuit" >&2; exit 2
fi
if [ "$image" != matcher ] && [ -z "$circuit" ]; then
  echo "the $image image serves one circuit, measured with it: nitro/build.sh $image CIRCUIT" >&2; exit 2
fi
for tool in docker nitro-cli; do
  command -v "$tool" >/dev/null || { echo "$tool not found: build on a Nitro-enabled Linux host" >&2; exit 1; }
done
docker buildx version >/dev/null 2>&1 || { echo "docker buildx (BuildKit) not found" >&2; exit 1; }
[ -f src/kalypso/contracts/build/sources.sha256 ] || { echo "run make setup first" >&2; exit 1; }
# the image is tagged with the commit: what it copies must be exactly that commit's
measured=(src/kalypso circuits/build nitro package.json package-lock.json)
if ! git diff --quiet HEAD -- "${measured[@]}" || [ -n "$(git ls-files --others --exclude-standard -- "${measured[@]}")" ]; then
  echo "uncommitted changes under ${measured[*]}: commit them (or stash) before building" >&2
  exit 1
fi

tag="kalypso-$image${circuit:+-$circuit}:$(git rev-parse --short=12 HEAD)"
args=()
[ -n "$circuit" ] && args+=(--build-arg "CIRCUIT=$circuit")
# BuildKit stamps every file with SOURCE_DATE_EPOCH, so the image (and its PCRs) depend
# on content only, not on when it was built
docker buildx build --file "nitro/Dockerfile.$image" --build-arg SOURCE_DATE_EPOCH=0 \
  --output "type=docker,name=$tag,rewrite-timestamp=true" ${args[@]+"${args[@]}"} .

mkdir -p build/nitro
name="$image${circuit:+-$circuit}"
nitro-cli build-enclave --docker-uri "$tag" --output-file "build/nitro/$name.eif" \
  > "build/nitro/$name.json"
echo "build/nitro/$name.eif ($tag)"
.venv/bin/kalypso attest image-id "build/nitro/$name.json"
