"""The dispycos web UI's parts (the public face is :mod:`pycos.httpd`).

* :mod:`pycos.web.http` -- a small HTTP/1.1 server made of pycos tasks over
  AsyncSocket, parsing with h11, with bounded costs per connection;
* :mod:`pycos.web.model` -- the cluster as the client's status stream tells
  it: nodes, servers, jobs, failures, rates, series for the charts;
* :mod:`pycos.web.app` -- the routes, the access rules (token, Host,
  same-origin) and the live event stream;
* :mod:`pycos.web.metrics` -- the Prometheus text;
* ``static/`` -- the page, its script (charts drawn as SVG here) and style.
"""
