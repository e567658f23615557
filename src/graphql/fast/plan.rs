//! What the fast path knows how to answer: a document's operation turned,
//! once per document, into selections it can resolve without async-graphql.
//! Anything it does not know (another root field, a directive other than
//! `@skip`/`@include`, arguments where it expects none, a list whose worst
//! case could exceed the complexity limit) makes the whole operation
//! ineligible, and the general path runs it.

use async_graphql::Name;
use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType,
    Selection as DocumentSelection, SelectionSet,
};
use async_graphql_value::{ConstValue, Value};

use crate::service::pagination::MAX_PAGE_SIZE;

/// One operation of a document, ready for the fast path.
#[derive(Debug)]
pub struct Plan {
    /// The operation's name; `None` for an anonymous one.
    pub operation_name: Option<Name>,
    /// The document held named operations (so `operationName` may name it).
    pub named_operations: bool,
    /// Declared variables and their defaults.
    pub variables: Vec<(Name, Option<ConstValue>)>,
    pub root: Selection<RootField>,
}

/// The fields of one selection set, fragments expanded in place.
#[derive(Debug)]
pub struct Selection<F> {
    pub entries: Vec<Entry<F>>,
    /// No `@skip`/`@include` and no response key twice: every entry is
    /// written, once, in order. Otherwise the writer decides per request
    /// which fields are kept and merges repeated keys as async-graphql does.
    pub plain: bool,
}

/// A field of a selection set, in document order once fragments are
/// expanded in place, with every `@skip`/`@include` that applies to it
/// (its own and those of the fragments it came through).
#[derive(Debug)]
pub struct Entry<F> {
    /// The alias, or the field's name.
    pub key: Name,
    pub field: F,
    pub conditions: Vec<Condition>,
}

/// One `@skip(if:)` or `@include(if:)`.
#[derive(Debug, Clone)]
pub struct Condition {
    pub include: bool,
    pub value: Value,
}

pub type Arguments = Vec<(Name, Value)>;

#[derive(Debug)]
pub enum RootField {
    Typename,
    Customers(Arguments, Selection<ConnectionField>),
    Customer(Arguments, Selection<CustomerField>),
}

#[derive(Debug)]
pub enum ConnectionField {
    Typename,
    Edges(Selection<EdgeField>),
    Nodes(Selection<CustomerField>),
    PageInfo(Selection<PageInfoField>),
    TotalCount,
}

#[derive(Debug)]
pub enum EdgeField {
    Typename,
    Cursor,
    Node(Selection<CustomerField>),
}

#[derive(Debug, Clone, Copy)]
pub enum PageInfoField {
    Typename,
    HasPreviousPage,
    HasNextPage,
    StartCursor,
    EndCursor,
}

#[derive(Debug)]
pub enum CustomerField {
    Typename,
    Id,
    Username,
    Name,
    Detail,
    WebhookMethod,
    WebhookUri,
    PermissionIds,
    TmCreate,
    TmUpdate,
    TmDelete,
    TmFreeze,
    Status,
    LineSecret,
    LineToken,
    WebhookSecret,
    GuestAgent(Selection<AgentField>),
}

#[derive(Debug, Clone, Copy)]
pub enum AgentField {
    Typename,
    Id,
    CustomerId,
    Username,
    Name,
    Detail,
    Permission,
    Permissions,
    TmCreate,
    TmUpdate,
    TmDelete,
}

/// A GraphQL object type whose fields the fast path resolves.
trait ObjectType: Sized {
    const NAME: &'static str;
    /// The field `name` of this type, planned; `None` if the fast path
    /// does not serve it (the operation then goes the general way).
    fn plan(field: &Field, planner: &Planner) -> Option<Self>;
}

/// Builds the plan of a document's operation, or says it is not eligible.
pub fn plan(document: &ExecutableDocument, max_complexity: usize) -> Option<Plan> {
    let (operation_name, named_operations, operation) = match &document.operations {
        DocumentOperations::Single(operation) => (None, false, operation),
        DocumentOperations::Multiple(operations) if operations.len() == 1 => {
            let (name, operation) = operations.iter().next()?;
            (Some(name.clone()), true, operation)
        }
        DocumentOperations::Multiple(_) => return None,
    };
    let operation: &OperationDefinition = &operation.node;
    if operation.ty != OperationType::Query || !operation.directives.is_empty() {
        return None;
    }
    let planner = Planner { document };
    let mut root: Vec<Entry<RootField>> = Vec::new();
    planner.collect(&operation.selection_set.node, &[], &mut root)?;
    // A root key selected twice is read once: only if both ask the same.
    for (index, entry) in root.iter().enumerate() {
        if root[..index]
            .iter()
            .any(|first| first.key == entry.key && !first.field.same_root_field(&entry.field))
        {
            return None;
        }
    }
    let plan = Plan {
        operation_name,
        named_operations,
        variables: operation
            .variable_definitions
            .iter()
            .map(|v| (v.node.name.node.clone(), v.node.default_value().cloned()))
            .collect(),
        root: Selection::of(root)?,
    };
    (plan.worst_complexity() <= max_complexity).then_some(plan)
}

struct Planner<'a> {
    document: &'a ExecutableDocument,
}

impl Planner<'_> {
    /// Expands `set` in document order into `out`, following fragment
    /// spreads and inline fragments as async-graphql does.
    fn collect<F: ObjectType>(
        &self,
        set: &SelectionSet,
        conditions: &[Condition],
        out: &mut Vec<Entry<F>>,
    ) -> Option<()> {
        for selection in &set.items {
            let mut applying = conditions.to_vec();
            applying.extend(conditions_of(selection.node.directives())?);
            match &selection.node {
                DocumentSelection::Field(field) => {
                    let field = &field.node;
                    out.push(Entry {
                        key: field.response_key().node.clone(),
                        field: F::plan(field, self)?,
                        conditions: applying,
                    });
                }
                DocumentSelection::FragmentSpread(spread) => {
                    let fragment = self
                        .document
                        .fragments
                        .get(&spread.node.fragment_name.node)?;
                    if fragment.node.type_condition.node.on.node.as_str() != F::NAME {
                        return None;
                    }
                    self.collect(&fragment.node.selection_set.node, &applying, out)?;
                }
                DocumentSelection::InlineFragment(inline) => {
                    if let Some(condition) = &inline.node.type_condition
                        && condition.node.on.node.as_str() != F::NAME
                    {
                        return None;
                    }
                    self.collect(&inline.node.selection_set.node, &applying, out)?;
                }
            }
        }
        Some(())
    }

    fn children<T: ObjectType>(&self, field: &Field) -> Option<Selection<T>> {
        let mut out = Vec::new();
        self.collect(&field.selection_set.node, &[], &mut out)?;
        Selection::of(out)
    }
}

impl<F> Selection<F> {
    /// `None` for one response key given to two different fields, which
    /// validation refuses: the writer takes a key's first field for all.
    fn of(entries: Vec<Entry<F>>) -> Option<Self> {
        let mut plain = true;
        for (index, entry) in entries.iter().enumerate() {
            plain &= entry.conditions.is_empty();
            for first in entries[..index]
                .iter()
                .filter(|first| first.key == entry.key)
            {
                plain = false;
                if std::mem::discriminant(&first.field) != std::mem::discriminant(&entry.field) {
                    return None;
                }
            }
        }
        Some(Self { entries, plain })
    }
}

impl RootField {
    fn same_root_field(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Typename, Self::Typename) => true,
            (Self::Customers(arguments, _), Self::Customers(other, _))
            | (Self::Customer(arguments, _), Self::Customer(other, _)) => arguments == other,
            _ => false,
        }
    }
}

/// The `@skip`/`@include` of a selection; `None` for any other directive.
fn conditions_of(directives: &[Positioned<Directive>]) -> Option<Vec<Condition>> {
    directives
        .iter()
        .map(|directive| {
            let include = match directive.node.name.node.as_str() {
                "skip" => false,
                "include" => true,
                _ => return None,
            };
            let value = directive.node.get_argument("if")?.node.clone();
            Some(Condition { include, value })
        })
        .collect()
}

/// A field that takes no arguments and selects nothing below it.
fn leaf<T>(field: &Field, planned: T) -> Option<T> {
    (field.arguments.is_empty() && field.selection_set.node.items.is_empty()).then_some(planned)
}

fn arguments(field: &Field) -> Arguments {
    field
        .arguments
        .iter()
        .map(|(name, value)| (name.node.clone(), value.node.clone()))
        .collect()
}

impl ObjectType for RootField {
    const NAME: &'static str = "Query";

    fn plan(field: &Field, planner: &Planner) -> Option<Self> {
        match field.name.node.as_str() {
            "__typename" => leaf(field, RootField::Typename),
            "customers" => Some(RootField::Customers(
                arguments(field),
                planner.children(field)?,
            )),
            "customer" => Some(RootField::Customer(
                arguments(field),
                planner.children(field)?,
            )),
            _ => None,
        }
    }
}

impl ObjectType for ConnectionField {
    const NAME: &'static str = "CustomerConnection";

    fn plan(field: &Field, planner: &Planner) -> Option<Self> {
        if !field.arguments.is_empty() {
            return None;
        }
        match field.name.node.as_str() {
            "__typename" => leaf(field, Self::Typename),
            "totalCount" => leaf(field, Self::TotalCount),
            "edges" => Some(Self::Edges(planner.children(field)?)),
            "nodes" => Some(Self::Nodes(planner.children(field)?)),
            "pageInfo" => Some(Self::PageInfo(planner.children(field)?)),
            _ => None,
        }
    }
}

impl ObjectType for EdgeField {
    const NAME: &'static str = "CustomerEdge";

    fn plan(field: &Field, planner: &Planner) -> Option<Self> {
        match field.name.node.as_str() {
            "__typename" => leaf(field, Self::Typename),
            "cursor" => leaf(field, Self::Cursor),
            "node" if field.arguments.is_empty() => Some(Self::Node(planner.children(field)?)),
            _ => None,
        }
    }
}

impl ObjectType for PageInfoField {
    const NAME: &'static str = "PageInfo";

    fn plan(field: &Field, _: &Planner) -> Option<Self> {
        let planned = match field.name.node.as_str() {
            "__typename" => Self::Typename,
            "hasPreviousPage" => Self::HasPreviousPage,
            "hasNextPage" => Self::HasNextPage,
            "startCursor" => Self::StartCursor,
            "endCursor" => Self::EndCursor,
            _ => return None,
        };
        leaf(field, planned)
    }
}

impl ObjectType for CustomerField {
    const NAME: &'static str = "Customer";

    fn plan(field: &Field, planner: &Planner) -> Option<Self> {
        let planned = match field.name.node.as_str() {
            "guestAgent" if field.arguments.is_empty() => {
                return Some(Self::GuestAgent(planner.children(field)?));
            }
            "__typename" => Self::Typename,
            "id" => Self::Id,
            "username" => Self::Username,
            "name" => Self::Name,
            "detail" => Self::Detail,
            "webhookMethod" => Self::WebhookMethod,
            "webhookUri" => Self::WebhookUri,
            "permissionIds" => Self::PermissionIds,
            "tmCreate" => Self::TmCreate,
            "tmUpdate" => Self::TmUpdate,
            "tmDelete" => Self::TmDelete,
            "tmFreeze" => Self::TmFreeze,
            "status" => Self::Status,
            "lineSecret" => Self::LineSecret,
            "lineToken" => Self::LineToken,
            "webhookSecret" => Self::WebhookSecret,
            _ => return None,
        };
        leaf(field, planned)
    }
}

impl ObjectType for AgentField {
    const NAME: &'static str = "Agent";

    fn plan(field: &Field, _: &Planner) -> Option<Self> {
        let planned = match field.name.node.as_str() {
            "__typename" => Self::Typename,
            "id" => Self::Id,
            "customerId" => Self::CustomerId,
            "username" => Self::Username,
            "name" => Self::Name,
            "detail" => Self::Detail,
            "permission" => Self::Permission,
            "permissions" => Self::Permissions,
            "tmCreate" => Self::TmCreate,
            "tmUpdate" => Self::TmUpdate,
            "tmDelete" => Self::TmDelete,
            _ => return None,
        };
        leaf(field, planned)
    }
}

/// The most async-graphql's complexity check could count for this
/// operation under any variables: every field 1 plus its children, and
/// `customers` (`page_cost`) 1 plus the largest page times its children.
/// Skipped fields count too, and `__typename` as 1: an upper bound.
impl Plan {
    fn worst_complexity(&self) -> usize {
        self.root
            .entries
            .iter()
            .map(|entry| match &entry.field {
                RootField::Typename => 1,
                RootField::Customers(_, connection) => {
                    let page = usize::try_from(MAX_PAGE_SIZE).unwrap_or(usize::MAX);
                    1 + page.saturating_mul(sum(connection, ConnectionField::cost))
                }
                RootField::Customer(_, customer) => 1 + sum(customer, CustomerField::cost),
            })
            .fold(0, usize::saturating_add)
    }
}

fn sum<F>(selection: &Selection<F>, cost: fn(&F) -> usize) -> usize {
    selection
        .entries
        .iter()
        .map(|e| cost(&e.field))
        .fold(0, usize::saturating_add)
}

impl ConnectionField {
    fn cost(&self) -> usize {
        1 + match self {
            Self::Edges(edges) => sum(edges, EdgeField::cost),
            Self::Nodes(nodes) => sum(nodes, CustomerField::cost),
            Self::PageInfo(info) => info.entries.len(),
            Self::Typename | Self::TotalCount => 0,
        }
    }
}

impl EdgeField {
    fn cost(&self) -> usize {
        1 + match self {
            Self::Node(node) => sum(node, CustomerField::cost),
            Self::Typename | Self::Cursor => 0,
        }
    }
}

impl CustomerField {
    fn cost(&self) -> usize {
        1 + match self {
            Self::GuestAgent(agent) => agent.entries.len(),
            _ => 0,
        }
    }
}
