"""The curators' cockpit in the admin: imports started from a form, the jobs page (live counts,
cancel, retry, errors as CSV) and the Celery task that runs a job. It sits above both layers."""
