"""The HTTP JSON API: one WSGI app (falcon, served by gevent) for agents' desks and
supervisors; later issues add their routes to the same app (``app.create_app``)."""
