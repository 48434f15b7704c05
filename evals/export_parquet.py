"""`evals export --to parquet`: samples.parquet and results.parquet, the DataFrames of evals.frames.

Both files read back with `pandas.read_parquet` into frames equal to `evals.load_run(RUN)`'s
(every column holds scalars). Each file also carries run.json in its schema metadata under the key
`evals.run` (read it with `pyarrow.parquet.read_schema(path).metadata`). Nothing is recomputed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from evals.frames import results_frame, samples_frame
from evals.run_dir import RunDir

RUN_METADATA_KEY = b"evals.run"


def write_parquet(run: RunDir, out_dir: Path) -> list[Path]:
    run_json = json.dumps(run.run.to_json(), ensure_ascii=False, default=str).encode()
    written = []
    for name, frame in (("samples", samples_frame(run)), ("results", results_frame(run))):
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), RUN_METADATA_KEY: run_json})
        path = out_dir / f"{name}.parquet"
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(table, tmp)
        tmp.replace(path)
        written.append(path)
    return written
