//! Stork's DR objects, annotation keys and schedule-policy syntax, as Stork itself reads them. Pure.
