"""The weekly digest: each department head's scorecard of the last week, by e-mail, in their language.

``weeks`` and ``compose`` are pure (a week's window, the mail's text and HTML); ``alerts`` reads
Alertmanager's API, ``mail`` sends through the SMTP relay Alertmanager uses, and ``run`` puts them
together for ``deptpulse digest``.
"""
