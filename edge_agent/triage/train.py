"""``python -m edge_agent.triage.train --out DIR``: train and export the triage model (see ``_train``)."""

from edge_agent.triage._train import main

if __name__ == "__main__":
    raise SystemExit(main())
