#!/usr/bin/env bash
# Data-parallel training across two "hosts" on one machine: two network namespaces joined by a
# veth pair (10.77.0.1 and 10.77.0.2), Open MPI's TCP transport between them, a hostfile with
# one slot per host. Sets them up, trains a few steps across them, tears them down.
# Needs root, iproute2 and openmpi-bin.     sudo scripts/mpi_netns_demo.sh [steps]
set -euo pipefail
STEPS=${1:-20}
SPROUT=$(realpath "${SPROUT:-.build/release/sprout}")
DATA=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
work=$(mktemp -d)
cleanup() {
  ip netns pids sprout-a 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns pids sprout-b 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns del sprout-a 2>/dev/null || true
  ip netns del sprout-b 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cleanup; work=$(mktemp -d)
ip netns add sprout-a
ip netns add sprout-b
ip link add veth-a type veth peer name veth-b
ip link set veth-a netns sprout-a
ip link set veth-b netns sprout-b
ip -n sprout-a addr add 10.77.0.1/24 dev veth-a
ip -n sprout-b addr add 10.77.0.2/24 dev veth-b
for ns in sprout-a sprout-b; do ip -n $ns link set lo up; done
ip -n sprout-a link set veth-a up
ip -n sprout-b link set veth-b up
ip netns exec sprout-a ping -c 1 -W 2 10.77.0.2 >/dev/null && echo "namespaces up: 10.77.0.1 <-> 10.77.0.2"

# Open MPI starts the remote rank through a launch agent: a script that enters the other
# namespace (what ssh would do across real machines).
cat > "$work/agent" <<AGENT
#!/usr/bin/env bash
# called as: agent HOST command...
host=\$1; shift
case \$host in 10.77.0.1) ns=sprout-a ;; 10.77.0.2) ns=sprout-b ;; *) echo "unknown host \$host" >&2; exit 1 ;; esac
exec ip netns exec \$ns bash -c "\$*"
AGENT
chmod +x "$work/agent"
printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' > "$work/hosts"
ip netns exec sprout-a mpirun --allow-run-as-root --hostfile "$work/hosts" -np 2 \
    --mca plm_rsh_agent "$work/agent" --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 \
    --mca oob_tcp_if_include 10.77.0.0/24 \
    -x PATH ${LD_LIBRARY_PATH:+-x LD_LIBRARY_PATH} \
    "$SPROUT" train --dataset fashion-mnist --data-dir "$DATA" --model mnist-cnn --steps "$STEPS" --batch-size 64 \
    --val-split 1000 --threads 1 --run-dir "$work/run" --checkpoint-every-steps 1000000
echo "hosts: $(cat "$work/hosts" | tr '\n' ' ')"
ls "$work/run/checkpoints"
