"""``perezvon demo``: a demo site, widget my_form_1, a unit, and a /demo page running the reference's examples."""
