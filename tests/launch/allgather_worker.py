"""One process of a local launch: joins jax.distributed from the VIDISTILL_* variables and
gathers every process's (index, device count) across processes over the CPU collectives."""
import numpy as np

from vidistill.parallel import multihost

setup = multihost.initialize(multihost.resolve_setup())
import jax  # pylint: disable=g-import-not-at-top
from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

mine = np.array([jax.process_index(), jax.local_device_count()], np.int32)
gathered = multihost_utils.process_allgather(mine)
total = int(jax.jit(lambda x: x.sum())(multihost_utils.host_local_array_to_global_array(
    np.ones((jax.local_device_count(),), np.int32), jax.sharding.Mesh(jax.devices(), ("d",)),
    jax.sharding.PartitionSpec("d"))))
print(f"RESULT mode={setup.mode} process={jax.process_index()} of={jax.process_count()} "
      f"devices={jax.device_count()} gathered={gathered.tolist()} sum={total}", flush=True)
