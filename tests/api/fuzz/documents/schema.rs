//! The schema, as far as the fuzzer needs it: root fields with their
//! arguments and output types, input objects, and what each input position
//! means, so that values can be valid for it (an id of the right kind, a
//! password the world knows) as often as hostile. Written by hand rather
//! than read from `schema.graphql`, because the meanings are not in it.

pub struct Obj {
    pub(super) name: &'static str,
    pub(super) fields: &'static [(&'static str, Option<&'static Obj>)],
}

static AGENT: Obj = Obj {
    name: "Agent",
    fields: &[
        ("id", None),
        ("customerId", None),
        ("username", None),
        ("name", None),
        ("detail", None),
        ("permission", None),
        ("permissions", None),
        ("tmCreate", None),
        ("tmUpdate", None),
        ("tmDelete", None),
    ],
};
static CUSTOMER: Obj = Obj {
    name: "Customer",
    fields: &[
        ("id", None),
        ("username", None),
        ("name", None),
        ("detail", None),
        ("webhookMethod", None),
        ("webhookUri", None),
        ("permissionIds", None),
        ("tmCreate", None),
        ("tmUpdate", None),
        ("tmDelete", None),
        ("lineSecret", None),
        ("lineToken", None),
        ("guestAgent", Some(&AGENT)),
        ("guestAgent", Some(&AGENT)),
    ],
};
static ACCESS_KEY: Obj = Obj {
    name: "AccessKey",
    fields: &[
        ("id", None),
        ("customerId", None),
        ("name", None),
        ("detail", None),
        ("tokenPrefix", None),
        ("tmExpire", None),
        ("tmLastUsed", None),
        ("tmCreate", None),
        ("tmUpdate", None),
        ("tmDelete", None),
    ],
};
static PAGE_INFO: Obj = Obj {
    name: "PageInfo",
    fields: &[
        ("hasPreviousPage", None),
        ("hasNextPage", None),
        ("startCursor", None),
        ("endCursor", None),
    ],
};
static CUSTOMER_EDGE: Obj = Obj {
    name: "CustomerEdge",
    fields: &[("cursor", None), ("node", Some(&CUSTOMER))],
};
static CUSTOMER_CONNECTION: Obj = Obj {
    name: "CustomerConnection",
    fields: &[
        ("edges", Some(&CUSTOMER_EDGE)),
        ("nodes", Some(&CUSTOMER)),
        ("pageInfo", Some(&PAGE_INFO)),
        ("totalCount", None),
    ],
};
static ACCESS_KEY_EDGE: Obj = Obj {
    name: "AccessKeyEdge",
    fields: &[("cursor", None), ("node", Some(&ACCESS_KEY))],
};
static ACCESS_KEY_CONNECTION: Obj = Obj {
    name: "AccessKeyConnection",
    fields: &[
        ("edges", Some(&ACCESS_KEY_EDGE)),
        ("nodes", Some(&ACCESS_KEY)),
        ("pageInfo", Some(&PAGE_INFO)),
        ("totalCount", None),
    ],
};
static VIEWER: Obj = Obj {
    name: "Viewer",
    fields: &[
        ("agent", Some(&AGENT)),
        ("customer", Some(&CUSTOMER)),
        ("permissions", None),
    ],
};
static LOGIN_PAYLOAD: Obj = Obj {
    name: "LoginPayload",
    fields: &[
        ("token", None),
        ("expiresAt", None),
        ("agent", Some(&AGENT)),
    ],
};
static LOGOUT_PAYLOAD: Obj = Obj {
    name: "LogoutPayload",
    fields: &[("revoked", None)],
};
static CHANGE_PASSWORD_PAYLOAD: Obj = Obj {
    name: "ChangePasswordPayload",
    fields: &[("agent", Some(&AGENT))],
};
static SET_AGENT_PASSWORD_PAYLOAD: Obj = Obj {
    name: "SetAgentPasswordPayload",
    fields: &[("agent", Some(&AGENT))],
};
static CREATE_CUSTOMER_PAYLOAD: Obj = Obj {
    name: "CreateCustomerPayload",
    fields: &[("customer", Some(&CUSTOMER))],
};
static DELETE_CUSTOMER_PAYLOAD: Obj = Obj {
    name: "DeleteCustomerPayload",
    fields: &[("customer", Some(&CUSTOMER))],
};
static FREEZE_CUSTOMER_PAYLOAD: Obj = Obj {
    name: "FreezeCustomerPayload",
    fields: &[("customer", Some(&CUSTOMER))],
};
static RECOVER_CUSTOMER_PAYLOAD: Obj = Obj {
    name: "RecoverCustomerPayload",
    fields: &[("customer", Some(&CUSTOMER))],
};
static UPDATE_CUSTOMER_PAYLOAD: Obj = Obj {
    name: "UpdateCustomerPayload",
    fields: &[("customer", Some(&CUSTOMER))],
};
static ROTATE_WEBHOOK_SECRET_PAYLOAD: Obj = Obj {
    name: "RotateWebhookSecretPayload",
    fields: &[("webhookSecret", None), ("customer", Some(&CUSTOMER))],
};
static CREATE_ACCESS_KEY_PAYLOAD: Obj = Obj {
    name: "CreateAccessKeyPayload",
    fields: &[("accessKey", Some(&ACCESS_KEY)), ("token", None)],
};
static DELETE_ACCESS_KEY_PAYLOAD: Obj = Obj {
    name: "DeleteAccessKeyPayload",
    fields: &[("accessKey", Some(&ACCESS_KEY))],
};

/// What an input position holds, by meaning (so that values can be valid).
#[derive(Clone, Copy)]
pub enum In {
    Page,
    Expire,
    Cursor,
    /// A new username.
    Username,
    /// The username to log in with.
    LoginName,
    Password,
    NewPassword,
    Text,
    Uri,
    Id(Ids),
    Method,
    IdList,
    Input(&'static InputObj),
}

#[derive(Clone, Copy)]
pub enum Ids {
    Customer,
    Agent,
    Key,
}

pub struct Arg {
    pub(super) name: &'static str,
    pub(super) ty: In,
    pub(super) required: bool,
}

const fn arg(name: &'static str, ty: In, required: bool) -> Arg {
    Arg { name, ty, required }
}

pub struct InputObj {
    pub(super) name: &'static str,
    pub(super) fields: &'static [Arg],
}

static LOGIN_INPUT: InputObj = InputObj {
    name: "LoginInput",
    fields: &[
        arg("username", In::LoginName, true),
        arg("password", In::Password, true),
    ],
};
static CHANGE_PASSWORD_INPUT: InputObj = InputObj {
    name: "ChangePasswordInput",
    fields: &[
        arg("currentPassword", In::Password, true),
        arg("newPassword", In::NewPassword, true),
    ],
};
static SET_AGENT_PASSWORD_INPUT: InputObj = InputObj {
    name: "SetAgentPasswordInput",
    fields: &[
        arg("agentId", In::Id(Ids::Agent), true),
        arg("password", In::NewPassword, true),
    ],
};
static CREATE_CUSTOMER_INPUT: InputObj = InputObj {
    name: "CreateCustomerInput",
    fields: &[
        arg("username", In::Username, true),
        arg("password", In::NewPassword, true),
        arg("name", In::Text, false),
        arg("detail", In::Text, false),
        arg("webhookMethod", In::Method, false),
        arg("webhookUri", In::Uri, false),
        arg("lineSecret", In::Text, false),
        arg("lineToken", In::Text, false),
        arg("permissionIds", In::IdList, false),
    ],
};
static DELETE_CUSTOMER_INPUT: InputObj = InputObj {
    name: "DeleteCustomerInput",
    fields: &[arg("id", In::Id(Ids::Customer), true)],
};
static FREEZE_CUSTOMER_INPUT: InputObj = InputObj {
    name: "FreezeCustomerInput",
    fields: &[arg("id", In::Id(Ids::Customer), true)],
};
static RECOVER_CUSTOMER_INPUT: InputObj = InputObj {
    name: "RecoverCustomerInput",
    fields: &[arg("id", In::Id(Ids::Customer), true)],
};
static UPDATE_CUSTOMER_INPUT: InputObj = InputObj {
    name: "UpdateCustomerInput",
    fields: &[
        arg("id", In::Id(Ids::Customer), false),
        arg("name", In::Text, false),
        arg("detail", In::Text, false),
        arg("webhookMethod", In::Method, false),
        arg("webhookUri", In::Uri, false),
    ],
};
static ROTATE_WEBHOOK_SECRET_INPUT: InputObj = InputObj {
    name: "RotateWebhookSecretInput",
    fields: &[arg("customerId", In::Id(Ids::Customer), true)],
};
static CREATE_ACCESS_KEY_INPUT: InputObj = InputObj {
    name: "CreateAccessKeyInput",
    fields: &[
        arg("customerId", In::Id(Ids::Customer), false),
        arg("name", In::Text, false),
        arg("detail", In::Text, false),
        arg("expireSeconds", In::Expire, false),
    ],
};
static DELETE_ACCESS_KEY_INPUT: InputObj = InputObj {
    name: "DeleteAccessKeyInput",
    fields: &[arg("id", In::Id(Ids::Key), true)],
};

pub(super) struct Root {
    pub(super) name: &'static str,
    pub(super) weight: usize,
    pub(super) args: &'static [Arg],
    pub(super) out: &'static Obj,
}

static PAGE_ARGS: [Arg; 4] = [
    arg("first", In::Page, false),
    arg("after", In::Cursor, false),
    arg("last", In::Page, false),
    arg("before", In::Cursor, false),
];

pub(super) static QUERIES: [Root; 4] = [
    Root {
        name: "customers",
        weight: 3,
        args: &PAGE_ARGS,
        out: &CUSTOMER_CONNECTION,
    },
    Root {
        name: "customer",
        weight: 3,
        args: &[arg("id", In::Id(Ids::Customer), true)],
        out: &CUSTOMER,
    },
    Root {
        name: "accessKeys",
        weight: 2,
        args: &[
            arg("customerId", In::Id(Ids::Customer), false),
            arg("first", In::Page, false),
            arg("after", In::Cursor, false),
            arg("last", In::Page, false),
            arg("before", In::Cursor, false),
        ],
        out: &ACCESS_KEY_CONNECTION,
    },
    Root {
        name: "me",
        weight: 3,
        args: &[],
        out: &VIEWER,
    },
];

pub(super) static MUTATIONS: [Root; 12] = [
    Root {
        name: "login",
        weight: 3,
        args: &[arg("input", In::Input(&LOGIN_INPUT), true)],
        out: &LOGIN_PAYLOAD,
    },
    Root {
        name: "logout",
        weight: 1,
        args: &[],
        out: &LOGOUT_PAYLOAD,
    },
    Root {
        name: "changePassword",
        weight: 2,
        args: &[arg("input", In::Input(&CHANGE_PASSWORD_INPUT), true)],
        out: &CHANGE_PASSWORD_PAYLOAD,
    },
    Root {
        name: "setAgentPassword",
        weight: 2,
        args: &[arg("input", In::Input(&SET_AGENT_PASSWORD_INPUT), true)],
        out: &SET_AGENT_PASSWORD_PAYLOAD,
    },
    Root {
        name: "createCustomer",
        weight: 3,
        args: &[arg("input", In::Input(&CREATE_CUSTOMER_INPUT), true)],
        out: &CREATE_CUSTOMER_PAYLOAD,
    },
    Root {
        name: "deleteCustomer",
        weight: 2,
        args: &[arg("input", In::Input(&DELETE_CUSTOMER_INPUT), true)],
        out: &DELETE_CUSTOMER_PAYLOAD,
    },
    Root {
        name: "updateCustomer",
        weight: 2,
        args: &[arg("input", In::Input(&UPDATE_CUSTOMER_INPUT), true)],
        out: &UPDATE_CUSTOMER_PAYLOAD,
    },
    Root {
        name: "freezeCustomer",
        weight: 1,
        args: &[arg("input", In::Input(&FREEZE_CUSTOMER_INPUT), true)],
        out: &FREEZE_CUSTOMER_PAYLOAD,
    },
    Root {
        name: "recoverCustomer",
        weight: 1,
        args: &[arg("input", In::Input(&RECOVER_CUSTOMER_INPUT), true)],
        out: &RECOVER_CUSTOMER_PAYLOAD,
    },
    Root {
        name: "rotateWebhookSecret",
        weight: 1,
        args: &[arg("input", In::Input(&ROTATE_WEBHOOK_SECRET_INPUT), true)],
        out: &ROTATE_WEBHOOK_SECRET_PAYLOAD,
    },
    Root {
        name: "createAccessKey",
        weight: 3,
        args: &[arg("input", In::Input(&CREATE_ACCESS_KEY_INPUT), true)],
        out: &CREATE_ACCESS_KEY_PAYLOAD,
    },
    Root {
        name: "deleteAccessKey",
        weight: 2,
        args: &[arg("input", In::Input(&DELETE_ACCESS_KEY_INPUT), true)],
        out: &DELETE_ACCESS_KEY_PAYLOAD,
    },
];

pub(super) fn type_name(ty: In) -> &'static str {
    match ty {
        In::Page | In::Expire => "Int",
        In::Cursor
        | In::Username
        | In::LoginName
        | In::Password
        | In::NewPassword
        | In::Text
        | In::Uri => "String",
        In::Id(_) => "UUID",
        In::Method => "WebhookMethod",
        In::IdList => "[UUID!]",
        In::Input(obj) => obj.name,
    }
}
