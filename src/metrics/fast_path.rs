//! How GraphQL operations were answered: by the fast path, by
//! async-graphql, or (under `verify`) differently by the two.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::Metrics;

/// `customer_api_graphql_fast_path_total{outcome}`: operations the fast
/// path answered (`served`), left to async-graphql (`general`), or, under
/// `GRAPHQL_FAST_PATH=verify`, answered differently (`mismatch`).
#[derive(Clone)]
pub(super) struct FastPathCounters {
    served: Counter,
    general: Counter,
    mismatch: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FastPathLabels {
    outcome: String,
}

impl FastPathCounters {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let family = Family::<FastPathLabels, Counter>::default();
        let counter = |outcome: &str| {
            family
                .get_or_create(&FastPathLabels {
                    outcome: outcome.to_owned(),
                })
                .clone()
        };
        let counters = Self {
            served: counter("served"),
            general: counter("general"),
            mismatch: counter("mismatch"),
        };
        registry.register(
            "graphql_fast_path",
            "GraphQL operations by how they were answered",
            family,
        );
        counters
    }
}

/// How one operation was answered, for `Metrics::record_fast_path`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FastPathOutcome {
    Served,
    General,
    Mismatch,
}

impl Metrics {
    pub fn record_fast_path(&self, outcome: FastPathOutcome) {
        match outcome {
            FastPathOutcome::Served => &self.fast_path.served,
            FastPathOutcome::General => &self.fast_path.general,
            FastPathOutcome::Mismatch => &self.fast_path.mismatch,
        }
        .inc();
    }

    /// Operations answered differently by the two paths so far (`verify`).
    pub fn fast_path_mismatches(&self) -> u64 {
        self.fast_path.mismatch.get()
    }

    /// Operations the fast path has answered so far.
    pub fn fast_path_served(&self) -> u64 {
        self.fast_path.served.get()
    }
}
