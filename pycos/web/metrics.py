"""The cluster as Prometheus metrics (``GET /metrics``, text format 0.0.4).

Written here from the format's definition (a few lines of text per metric)
rather than through ``prometheus_client``: the UI must not need it, and its
registry is a process-wide singleton that a library should not fill.  The
tests parse what this writes with ``prometheus_client``'s own parser.
"""

from pycos.web.model import DURATION_BUCKETS, STATES

__all__ = ["render", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value):
    if isinstance(value, float):
        return repr(value)
    return str(value)


def render(cluster):
    """The metrics text of ``cluster`` (a pycos.web.model.Cluster)."""
    out = []

    def family(name, kind, text, samples):
        out.append("# HELP %s %s" % (name, text))
        out.append("# TYPE %s %s" % (name, kind))
        for suffix, labels, value in samples:
            if value is None:
                continue
            lab = ",".join('%s="%s"' % (k, _label(v)) for k, v in labels)
            out.append("%s%s%s %s" % (name, suffix, "{%s}" % lab if lab else "", _num(value)))

    def by_state(things):
        counts = dict.fromkeys(STATES, 0)
        for t in things:
            counts[t.status] = counts.get(t.status, 0) + 1
        return [("", [("state", s.lower())], n) for s, n in counts.items()]

    family("pycos_nodes", "gauge", "Nodes known to the client, by state.",
           by_state(cluster.nodes.values()))
    family("pycos_servers", "gauge", "Server processes known to the client, by state.",
           by_state(cluster.servers.values()))
    family("pycos_jobs_running", "gauge", "Jobs running now.", [("", [], cluster.running())])
    # text format 0.0.4 names a counter's family with its _total suffix
    family("pycos_jobs_total", "counter", "Jobs finished, by outcome.",
           [("", [("outcome", "done")], cluster.done),
            ("", [("outcome", "failed")], cluster.failed)])
    buckets = []
    total = 0
    for bound, n in zip(DURATION_BUCKETS + (float("inf"),), cluster.durations):
        total += n
        buckets.append(("_bucket", [("le", "+Inf" if bound == float("inf") else _num(bound))],
                        total))
    family("pycos_job_duration_seconds", "histogram",
           "Run time of the jobs that finished (from their start to their end's report).",
           buckets + [("_sum", [], float(cluster.duration_sum)), ("_count", [], total)])
    nodes = sorted(cluster.nodes.values(), key=lambda n: n.id)

    def per_node(field):
        return [("", [("node", n.id), ("name", n.name)], field(n)) for n in nodes]
    family("pycos_node_jobs_running", "gauge", "Jobs running on each node.",
           per_node(lambda n: n.running()))
    family("pycos_node_cpu_idle_percent", "gauge", "Idle CPU of each node, in percent.",
           per_node(lambda n: n.avail.cpu if n.avail else None))
    family("pycos_node_memory_available_bytes", "gauge", "Memory available on each node.",
           per_node(lambda n: n.avail.memory if n.avail else None))
    family("pycos_node_disk_free_bytes", "gauge",
           "Free disk space on each node's working directory's partition.",
           per_node(lambda n: n.avail.disk if n.avail else None))
    family("pycos_node_swap_free_percent", "gauge", "Swap space not in use on each node.",
           per_node(lambda n: n.avail.swap if n.avail else None))
    return "\n".join(out) + "\n"
