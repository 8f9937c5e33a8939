//! The admission webhook server (`drgitops webhook`): HTTPS admission endpoints and the admin port.
