"""The Live page's session: attached runs (live clients and replayed recordings), open streams, their windows.

Pages call these; the page script itself only lays out widgets.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from studio.charts import live as live_charts
from studio.errors import StudioError

KEEP = 500
"""Windows kept per stream for the charts."""


@dataclass
class StreamView:
    run: str
    stream: str
    label: str
    chart: str
    kind: str
    spec: dict


@dataclass
class LiveSession:
    """Runs attached in this browser session and what they sent.

    Attributes
    ----------
    runs : dict of str to Client or Replay
        By run label.
    views : dict of (run, stream) to StreamView
    values : dict of (run, stream) to list of WindowValue
    acks : list of str
        Acknowledgements of commands, newest last.
    """

    runs: dict = field(default_factory=dict)
    views: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    acks: list = field(default_factory=list)

    def __post_init__(self):
        # when Streamlit drops the browser session's state, the clients say bye and their threads end
        weakref.finalize(self, _close_all, self.runs)

    def attach(self, address: str, token: str, label: str = "") -> str:
        from studio.watch import connect

        client = connect(address.strip(), token.strip(), timeout=5.0)
        label = label.strip() or client.run
        old = self.runs.get(label)
        if old is not None:
            old.close()
        self.runs[label] = client
        return label

    def add_replay(self, path: str, chart: str = "", tags: str = "") -> list[str]:
        """Add stored runs: a recording folder, TensorBoard events or an MLflow ``mlruns`` folder.

        Parameters
        ----------
        path : str
        chart : str, optional
            Draw every stream of the stored runs on this chart (e.g. beside the live stream of that chart
            name); default: a recording's stream name, a TensorBoard tag or an MLflow metric.
        tags : str, optional
            Comma-separated TensorBoard tags or MLflow metrics to keep (default: all).

        Returns
        -------
        list of str
            The labels of the runs added.

        Raises
        ------
        StudioError
            From :func:`studio.watch.stored_runs`.
        """
        from studio.watch import stored_runs

        keep = [t.strip() for t in tags.split(",") if t.strip()]
        labels = []
        for rep in stored_runs(path.strip(), keep or None):
            label = f"{rep.run} ({'stored' if rep.source == 'recording' else rep.source})"
            self.detach(label)
            self.runs[label] = rep
            for sid, spec in rep.streams.items():
                name = _describe(spec) if rep.source == "recording" else sid
                self.views[(label, sid)] = StreamView(label, sid, name, chart.strip() or name, spec.get("kind", ""),
                                                      spec)
            labels.append(label)
        return labels

    def detach(self, label: str) -> None:
        run = self.runs.pop(label, None)
        if run is not None:
            run.close()
        for key in [k for k in self.views if k[0] == label]:
            self.views.pop(key)
            self.values.pop(key, None)

    def open(self, label: str, chart: str = "", record: str = "", **spec) -> str:
        client = self.runs[label]
        if not hasattr(client, "open_stream"):
            raise StudioError(f"{label} is a stored run; open streams on a live one.")
        sid = client.open_stream(**spec)
        full = client.streams[sid]
        name = _describe(full)
        self.views[(label, sid)] = StreamView(label, sid, name, chart.strip() or name, full.get("kind", ""), full)
        if record.strip():
            client.record(sid, Path(record.strip()).expanduser())
        return sid

    def close_stream(self, key) -> None:
        client = self.runs.get(key[0])
        if client is not None and hasattr(client, "close_stream"):
            client.close_stream(key[1])
        self.views.pop(key, None)
        self.values.pop(key, None)

    def command(self, label: str, name: str, value=None) -> dict:
        ack = self.runs[label].send_command(name, value)
        shown = f" = {ack.get('value')!r}" if value is not None else ""
        self.acks.append(f"{label}: {name}{shown} acknowledged")
        return ack

    def refresh(self) -> int:
        """Collect what every run sent since the last refresh; returns the number of new windows."""
        n = 0
        for label, client in list(self.runs.items()):
            for v in client.poll():
                key = (label, v.stream)
                if key not in self.views:
                    continue
                kept = self.values.setdefault(key, [])
                kept.append(v)
                del kept[:-KEEP]
                n += 1
        return n

    def charts(self) -> dict:
        """Chart name -> kind -> {series label: windows}."""
        out: dict = {}
        for key, view in self.views.items():
            values = self.values.get(key, [])
            kind = values[-1].kind if values else view.kind
            out.setdefault(view.chart, {}).setdefault(kind, {})[f"{view.run} · {view.label}"] = values
        return out


def _close_all(runs: dict) -> None:
    for run in list(runs.values()):
        try:
            run.close()
        except Exception:  # noqa: BLE001 -- best effort at session end
            pass


def _describe(spec: dict) -> str:
    params = spec.get("params") or {}
    what = params.get("name") or params.get("layer") or ""
    window = ", ".join(f"{k} {v}" for k, v in (spec.get("window") or {}).items())
    return f"{spec.get('map')}{f'({what})' if what else ''} {spec.get('reduce')} / {window}".strip()


def session() -> LiveSession:
    return st.session_state.setdefault("live", LiveSession())


def draw_charts(live: LiveSession) -> None:
    """Every chart, drawn by the kind of its latest values."""
    groups = live.charts()
    stored = {f"{v.run} · {v.label}" for v in live.views.values() if not hasattr(live.runs.get(v.run), "open_stream")}
    if not groups:
        st.info("No stream open yet: open one above.")
        return
    for chart, kinds in groups.items():
        for kind, series in kinds.items():
            n = sum(len(v) for v in series.values())
            if kind in ("scalar", "layers"):
                if n:
                    st.altair_chart(live_charts.line_chart(series, title=chart, stored=stored), width="stretch")
                else:
                    st.caption(f"{chart}: waiting for the first window")
            elif kind == "histogram":
                if n:
                    st.altair_chart(live_charts.histogram_chart(series, title=chart), width="stretch")
                else:
                    st.caption(f"{chart}: waiting for the first window")
            elif kind == "images":
                for label, values in series.items():
                    if not values:
                        st.caption(f"{label}: waiting for the first window")
                        continue
                    last = values[-1]
                    tiles, captions = live_charts.image_grid(last.value)
                    st.markdown(f"**{chart}**, {label}: window {last.window} (steps {last.first_step}-{last.step})")
                    if tiles:
                        st.image(tiles, caption=captions, width=96, clamp=True)
                    else:
                        st.caption("the inputs are not images")
