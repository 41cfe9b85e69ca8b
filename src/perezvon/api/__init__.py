"""HTTP: the public widget API (window.ctw's server side), its server-side twin, and the admin REST API."""
