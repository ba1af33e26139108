"""One process of a local launch: joins jax.distributed, streams its rows of global batches
start..start+steps from the shards, and gathers every process's row indices across processes."""
import json
import sys

import numpy as np

from vidistill.parallel import multihost

multihost.initialize(multihost.resolve_setup())
import jax  # pylint: disable=g-import-not-at-top
from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

from vidistill.data import grain_source  # pylint: disable=g-import-not-at-top

prefix, start, steps, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
stream = grain_source.batches(grain_source.open_records(prefix), batch_size=batch, seed=11,
                              start_step=start, process_index=jax.process_index(),
                              process_count=jax.process_count())
mine = np.stack([next(stream)["index"][:, 0] for _ in range(steps)]).astype(np.int32)
gathered = multihost_utils.process_allgather(mine)  # [processes, steps, rows]
print("RESULT " + json.dumps({"process": jax.process_index(), "count": jax.process_count(),
                              "all": gathered.tolist()}), flush=True)
