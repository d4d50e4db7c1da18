"""Live: attach to a running training process, open streams at run time, send it commands."""

import streamlit as st

from studio.errors import StudioError
from studio.ui import live, state

state.through_router(__file__)

st.title("Live")
st.caption("Attach to a training script that embeds `studio.watch.Watcher` (it prints its address and token), "
           "open streams while it runs, compare with stored runs. See docs/watch.md.")
session = live.session()

attach, stored = st.columns(2)
with attach.form("live-attach"):
    st.markdown("**Attach to a run**")
    address = st.text_input("Address", placeholder="tcp://127.0.0.1:PORT", key="live-address")
    token = st.text_input("Token", type="password", key="live-token")
    label = st.text_input("Run label (optional)", key="live-label")
    if st.form_submit_button("Attach", type="primary"):
        try:
            st.success(f"Attached to {session.attach(address, token, label)}.")
        except StudioError as exc:
            st.error(str(exc))
with stored.form("live-stored"):
    st.markdown("**Add a stored run**")
    path = st.text_input("Stored run folder", key="live-replay-path",
                         help="A recording (Parquet parts written by 'Record to folder'), a TensorBoard log folder or "
                              "event file, or an MLflow mlruns folder.")
    tags = st.text_input("Tags or metrics (comma-separated; empty: all)", key="live-replay-tags")
    chart = st.text_input("Chart (draw it beside the live stream of this chart name)", key="live-replay-chart")
    if st.form_submit_button("Add"):
        try:
            st.success(f"Added {', '.join(session.add_replay(path, chart, tags))}.")
        except (StudioError, OSError) as exc:
            st.error(str(exc))

live_runs = {k: c for k, c in session.runs.items() if hasattr(c, "open_stream")}
if not session.runs:
    st.info("No run attached yet.")
    st.stop()

if live_runs:
    st.subheader("Open a stream")
    run = st.selectbox("Run", list(live_runs), key="live-run")
    client = live_runs[run]
    seen = client.info.get("seen", {})
    extractors = {e["name"]: e for e in client.info["extractors"]}
    c1, c2, c3 = st.columns(3)
    events = sorted(seen) or ["batch"]
    event = c1.selectbox("Event", events, key="live-event")
    map_name = c2.selectbox("Map", list(extractors), key="live-map", help="; ".join(
        f"{e['name']}: {e['help']}" for e in extractors.values()))
    ex = extractors[map_name]
    reducers = [r["name"] for r in client.info["reducers"] if ex["kind"] in r["kinds"]]
    reduce = c3.selectbox("Reduce", reducers, key="live-reduce")
    params = {}
    observables = sorted(seen.get(event, {}))
    pcols = st.columns(max(len(ex["params"]), 1))
    for col, p in zip(pcols, ex["params"]):
        key = f"live-p-{map_name}-{p['name']}"
        if p["observable"] and observables:
            default = p["default"] if p["default"] in observables else "loss" if "loss" in observables \
                else observables[0]
            params[p["name"]] = col.selectbox(p["name"], observables, index=observables.index(default), key=key,
                                              help=p["help"])
        elif p["type"] == "int":
            params[p["name"]] = int(col.number_input(p["name"], value=int(p["default"] or 1), step=1, key=key,
                                                     min_value=int(p["low"]) if p["low"] is not None else None,
                                                     help=p["help"]))
        elif p["type"] == "float":
            params[p["name"]] = float(col.number_input(p["name"], value=float(p["default"] or 0.0), key=key,
                                                       help=p["help"]))
        else:
            params[p["name"]] = col.text_input(p["name"], value=p["default"] or "", key=key, help=p["help"])
    reducer = next(r for r in client.info["reducers"] if r["name"] == reduce)
    reduce_params = {}
    for p in reducer["params"]:
        reduce_params[p["name"]] = int(st.number_input(f"{reduce}: {p['name']}", value=int(p["default"]), step=1,
                                                       min_value=int(p["low"]), key=f"live-rp-{reduce}-{p['name']}"))
    w1, w2, w3 = st.columns([2, 1, 2])
    window_kind = w1.radio("Window closed by", ["the script (end_window)", "every N events", "every T seconds"],
                           key="live-window", horizontal=True)
    if window_kind.startswith("the script"):
        window = {"until": w2.text_input("Window name", value="epoch", key="live-until")}
    elif window_kind.startswith("every N"):
        window = {"every": int(w2.number_input("N", value=10, min_value=1, step=1, key="live-every"))}
    else:
        window = {"seconds": float(w2.number_input("T (s)", value=2.0, min_value=0.1, key="live-seconds"))}
    chart_name = w3.text_input("Chart (streams with the same chart name share it)", key="live-chart")
    f1, f2, f3 = st.columns([1, 1, 2])
    op = f1.selectbox("Filter", ["(none)", ">", ">=", "<", "<=", "==", "!="], key="live-filter-op")
    threshold = f2.number_input("than", value=0.0, key="live-filter-value")
    record = f3.text_input("Record to folder (optional; Parquet parts, appended)", key="live-record")
    if st.button("Open stream", type="primary", key="live-open"):
        try:
            sid = session.open(run, chart=chart_name, record=record, event=event, map=map_name, params=params,
                               reduce=reduce, reduce_params=reduce_params,
                               where=None if op == "(none)" else {"op": op, "value": float(threshold)}, **window)
            st.success(f"Opened stream {sid} on {run}.")
        except StudioError as exc:
            st.error(str(exc))

    st.subheader("Commands")
    for run_label, c in live_runs.items():
        cols = st.columns(1 + len(c.info.get("commands", [])) + 2 * len(c.info.get("params", {})))
        cols[0].markdown(f"**{run_label}**")
        i = 1
        for name in c.info.get("commands", []):
            if cols[i].button(name, key=f"live-cmd-{run_label}-{name}"):
                try:
                    session.command(run_label, name)
                except StudioError as exc:
                    st.error(str(exc))
            i += 1
        for name, current in c.info.get("params", {}).items():
            value = cols[i].number_input(name, value=float(current) if isinstance(current, (int, float)) else 0.0,
                                         format="%.6g", key=f"live-param-{run_label}-{name}")
            if cols[i + 1].button(f"Set {name}", key=f"live-set-{run_label}-{name}"):
                try:
                    session.command(run_label, name, float(value))
                except StudioError as exc:
                    st.error(str(exc))
            i += 2
    for ack in session.acks[-3:]:
        st.success(ack)

if session.views:
    st.subheader("Streams")
    for key, view in list(session.views.items()):
        a, b = st.columns([5, 1])
        a.markdown(f"`{view.run}` · {view.label} → chart **{view.chart}**")
        if b.button("Close", key=f"live-close-{key[0]}-{key[1]}"):
            session.close_stream(key)
            st.rerun()


@st.fragment(run_every=1.0)
def charts():
    session.refresh()
    for label, c in session.runs.items():
        errors = getattr(c, "errors", [])
        if errors:
            st.warning(f"{label}: {errors[-1]}")
    live.draw_charts(session)


st.subheader("Charts")
charts()
