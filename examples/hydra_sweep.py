"""A sweep over Hydra configurations: one pipeline, one variant per configuration.

conf/config.yaml picks a model (conf/model/small.yaml or large.yaml) and a learning rate.
The sweep below is what `python app.py --multirun model=small,large lr=0.1,0.01` runs
with Hydra: four configurations. All four read the same prepared data, so `prepare` is
one task, runs once and says `all` in the Variant column; each configuration has its own
`train`; `compare` reads every result. Rerun: nothing runs. Needs the hydra extra:
pip install 'depio_like[hydra]'.
"""

import json
from pathlib import Path
from typing import Annotated

from depio_like import Dependency, Pipeline, Product, task
from depio_like.integrations.hydra import run_hydra_multirun

pipeline = Pipeline()
BLD = Path("build/sweep")
BLD.mkdir(parents=True, exist_ok=True)
RAW = BLD / "raw.txt"
if not RAW.exists():
    RAW.write_text(" ".join(str(i) for i in range(100)) + "\n")


@task("prepare")
def prepare(out: Annotated[Path, Product], raw: Annotated[Path, Dependency], scale: float):
    print("preparing the data (once, for every configuration)")
    out.write_text(json.dumps([float(x) * scale for x in raw.read_text().split()]))


@task("train")
def train(out: Annotated[Path, Product], data: Annotated[Path, Dependency], model: str,
          width: int, lr: float):
    values = json.loads(data.read_text())
    loss = sum((v - lr * width / 8) ** 2 for v in values) / len(values)  # stands in for training
    out.write_text(json.dumps({"model": model, "lr": lr, "loss": round(loss, 6)}))


@task("compare")
def compare(out: Annotated[Path, Product], results: Annotated[list, Dependency]):
    runs = [json.loads(Path(r).read_text()) for r in results]
    best = min(runs, key=lambda r: r["loss"])
    out.write_text(json.dumps(best) + "\n")
    print(f"best: model={best['model']} lr={best['lr']} (loss {best['loss']})")


results = []


def build(pipeline, cfg):
    # Plain values from the config, not config nodes: `prepare` gets the same arguments in
    # every configuration, so it is one task.
    data = BLD / "prepared.json"
    pipeline.add_task(prepare(data, RAW, scale=cfg.data.scale))
    result = BLD / f"{cfg.model.name}-lr{cfg.lr}.json"
    pipeline.add_task(train(result, data, cfg.model.name, cfg.model.width, cfg.lr))
    results.append(result)


run_hydra_multirun(pipeline, Path(__file__).parent / "conf", "config",
                   ["model=small,large", "lr=0.1,0.01"], build)
pipeline.add_task(compare(BLD / "best.json", results))

exit(pipeline.main())
