//! The fast path: the queries a console sends most (`customers` pages and
//! `customer(id)`, with any fields of customers, their guest agents, edges
//! and page info) answered without async-graphql's per-field machinery.
//!
//! async-graphql resolves every field as a future with a context of its
//! own, and validates and copies the document on every request: about 6 M
//! instructions for a page of 50 customers, two thirds of a request. Here a
//! document's operation is planned once (`plan`), and each request walks
//! the rows once, building the response's values directly.
//!
//! It is not a second engine with its own rules: it serves a document only
//! after async-graphql has executed that same document once without
//! refusing it (so the document is valid), and it gives up on anything
//! that is not the plain, successful case — an error of any kind, a
//! variable it would have to coerce differently, a complexity that could
//! exceed the limit — and the general path then runs the operation from
//! the start (these are reads, so nothing is done twice). Field order,
//! merging of repeated response keys, aliases, fragments, `__typename`,
//! `@skip`/`@include` and every value's formatting follow async-graphql's,
//! using the same conversions; `tests/api/fast_path.rs` compares the two
//! byte for byte.

mod plan;
mod render;
mod select;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{InputType, Name, Request, Value, Variables};

use super::context::RequestAuth;
use super::customers::CustomerFilterInput;
use super::pagination::page_request;
use crate::app::AppState;
use crate::service::customers::{self, CustomerFilter, CustomerOrder};
use plan::{Arguments, Condition, Plan, RootField, Selection};
use select::{Below, Needs};

/// What the fast path knows of one cached document; shared by every copy
/// of its cache entry.
#[derive(Default)]
pub struct FastSlot {
    /// async-graphql has executed this document once without refusing it.
    validated: AtomicBool,
    plan: OnceLock<Option<Plan>>,
}

impl FastSlot {
    pub fn mark_validated(&self) {
        self.validated.store(true, Ordering::Relaxed);
    }

    fn plan(&self, document: &ExecutableDocument, max_complexity: usize) -> Option<&Plan> {
        if !self.validated.load(Ordering::Relaxed) {
            return None;
        }
        self.plan
            .get_or_init(|| plan::plan(document, max_complexity))
            .as_ref()
    }
}

/// Answers `request` on the fast path with the response's JSON (`data`
/// only), or `None` if the general path must answer.
pub async fn execute(
    slot: &FastSlot,
    document: &ExecutableDocument,
    max_complexity: usize,
    request: &Request,
    state: &AppState,
) -> Option<Vec<u8>> {
    let plan = slot.plan(document, max_complexity)?;
    match (&request.operation_name, &plan.operation_name) {
        (None, _) => {}
        (Some(wanted), Some(name)) if plan.named_operations && wanted == name.as_str() => {}
        _ => return None,
    }
    let auth = request
        .data
        .get(&std::any::TypeId::of::<Arc<RequestAuth>>())?
        .downcast_ref::<Arc<RequestAuth>>()?;
    let run = Run {
        plan,
        variables: &request.variables,
        state,
        auth,
    };
    // Nothing selected: async-graphql answers that its own way.
    let keys = select::kept(&run, &[&plan.root])??;
    // Every read first, then the JSON in one go. A key selected twice asks
    // the same twice (the plan checks that): it is read once.
    let mut loaded = Vec::with_capacity(keys.len());
    for (key, fields) in &keys {
        let data = match fields[0] {
            RootField::Typename => Loaded::Typename,
            RootField::Customers(arguments, _) => {
                let selections = Below::of(fields, |f| match f {
                    RootField::Customers(_, selection) => Some(selection),
                    _ => None,
                })?;
                let page = run.customers(arguments, selections.as_slice()).await?;
                Loaded::Page(selections, page)
            }
            RootField::Customer(arguments, _) => {
                let selections = Below::of(fields, |f| match f {
                    RootField::Customer(_, selection) => Some(selection),
                    _ => None,
                })?;
                let customer = run.customer(arguments).await?;
                Loaded::Customer(selections, customer)
            }
        };
        loaded.push((*key, data));
    }
    render::Json::new(&run, &loaded).response(&loaded)
}

/// A root key's rows, read and ready to be written with its selections.
enum Loaded<'a> {
    Typename,
    Page(Below<'a, plan::ConnectionField>, render::Page<'a>),
    /// `None`: no such customer (or not one the caller may see).
    Customer(
        Below<'a, plan::CustomerField>,
        Option<Box<render::OneCustomer<'a>>>,
    ),
}

/// One request on the fast path.
struct Run<'a> {
    plan: &'a Plan,
    variables: &'a Variables,
    state: &'a AppState,
    auth: &'a Arc<RequestAuth>,
}

impl<'a> Run<'a> {
    /// Whether `@skip`/`@include` leave the field out, as async-graphql
    /// decides it (from the request's variables only, not their defaults);
    /// `None` (give up) for a condition that is not a plain boolean, which
    /// async-graphql's validation would refuse or read its own way.
    fn skipped(&self, conditions: &[Condition]) -> Option<bool> {
        for condition in conditions {
            let value = condition
                .value
                .clone()
                .into_const_with(|name| self.variables.get(&name).cloned().ok_or(()))
                .ok()?;
            let Value::Boolean(value) = value else {
                return None;
            };
            if condition.include != value {
                return Some(true);
            }
        }
        Some(false)
    }

    /// The value of a variable the operation declares: the request's, else
    /// the declared default. Lists and objects are left to the general path,
    /// whose validation checks them field by field.
    fn variable(&self, name: &Name) -> Option<Value> {
        let (_, default) = self.plan.variables.iter().find(|(n, _)| n == name)?;
        let value = self.variables.get(name).or(default.as_ref())?;
        match value {
            Value::List(_) | Value::Object(_) => None,
            value => Some(value.clone()),
        }
    }

    /// Argument `name` coerced as async-graphql coerces it for the resolver.
    fn argument<T: InputType>(&self, arguments: &Arguments, name: &str) -> Option<T> {
        let value = match arguments.iter().find(|(n, _)| n.as_str() == name) {
            Some((_, value)) => Some(
                value
                    .clone()
                    .into_const_with(|var| self.variable(&var).ok_or(()))
                    .ok()?,
            ),
            None => None,
        };
        T::parse(value).ok()
    }

    async fn customers(
        &self,
        arguments: &Arguments,
        selections: &[&Selection<plan::ConnectionField>],
    ) -> Option<render::Page<'a>> {
        let filter: Option<CustomerFilterInput> = self.argument(arguments, "filter")?;
        let order = if arguments.iter().any(|(n, _)| n == "orderBy") {
            self.argument::<CustomerOrder>(arguments, "orderBy")?
        } else {
            CustomerOrder::default()
        };
        let page = page_request(
            self.argument(arguments, "first")?,
            self.argument(arguments, "after")?,
            self.argument(arguments, "last")?,
            self.argument(arguments, "before")?,
        )
        .ok()?;
        let principal = self.auth.principal(self.state).await.ok()?;
        let filter = filter.map(CustomerFilter::from).unwrap_or_default();
        let rows = customers::list(self.state, principal, &filter, order, page)
            .await
            .ok()?;
        let needs = Needs::of_connection(self, selections)?;
        let guests = self
            .guests(needs.guests, rows.items.iter().map(|r| r.id))
            .await?;
        let total = match needs.total_count {
            true => Some(
                customers::count(self.state, principal, &filter)
                    .await
                    .ok()?,
            ),
            false => None,
        };
        Some(render::Page {
            rows,
            guests,
            total,
            principal,
        })
    }

    async fn customer(
        &self,
        arguments: &Arguments,
    ) -> Option<Option<Box<render::OneCustomer<'a>>>> {
        let id: uuid::Uuid = self.argument(arguments, "id")?;
        let principal = self.auth.principal(self.state).await.ok()?;
        // With its guest agent, in one statement (shared with other
        // requests' reads), whether or not it is selected.
        let found = customers::get_with_guest(self.state, principal, id);
        let Some((row, guest)) = found.await.ok()? else {
            return Some(None);
        };
        let guests = render::Guests::from([(row.id, guest)]);
        Some(Some(Box::new(render::OneCustomer {
            row,
            guests,
            principal,
        })))
    }

    /// The guest agents of these customers, read as the `guestAgent`
    /// loader reads them (same statement, same replica choice).
    async fn guests(
        &self,
        needed: bool,
        ids: impl IntoIterator<Item = uuid::Uuid>,
    ) -> Option<render::Guests> {
        if !needed {
            return Some(render::Guests::default());
        }
        let ids: Vec<uuid::Uuid> = ids.into_iter().collect();
        if ids.is_empty() {
            return Some(render::Guests::default());
        }
        let loader = super::loaders::GuestAgentLoader::new(self.state.clone(), self.auth.clone());
        async_graphql::dataloader::Loader::load(&loader, &ids)
            .await
            .ok()
    }
}
