"""gunicorn reads this file from the working directory (deploy/Procfile, deploy/*.service).

Access-log lines carry the method, the path and the status, never the query string or the
referrer: the Mosio webhook may arrive as a GET whose query string holds the participant's
number, the text and the project's API key (docs/mosio.md, M23), and logs never hold those.
"""

access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s" %(M)sms'
