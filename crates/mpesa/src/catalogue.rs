//! The one list of M-Pesa operations, both gateways: the dispatcher finds a request's
//! operation here (methods, path and its aliases), the per-API listeners of the v1x gateway
//! take their ports from here, the mandatory fields are checked from here, and the OpenAPI
//! document ([`crate::openapi`]) and the portal's API pages are written from here, so what
//! is served and what is documented cannot drift.

use crate::wire::{self, Code, Gateway, Market};

/// An operation of either gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    GetSession,
    C2b,
    B2c,
    B2b,
    Reversal,
    QueryStatus,
    QueryBeneficiary,
    DirectDebitCreate,
    DirectDebitPay,
    DirectDebitQuery,
    DirectDebitCancel,
    /// v1x only: a customer's (obfuscated) name.
    CustomerName,
    /// Listed by the portal's introduction but undocumented: answered `INS-997`.
    NotBuilt,
}

/// Where a request field goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Required,
    Optional,
    /// One of a group is required (MSISDN or MSISDN token).
    OneOf,
}

/// One `input_*` field of an operation, as the portal's table gives it.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub presence: Presence,
    /// The portal's regular expression, or the allowed values.
    pub rule: &'static str,
    pub example: &'static str,
    pub description: &'static str,
}

/// One served operation.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub api: Api,
    pub gateway: Gateway,
    /// A stable identifier (`v2C2bSingleStage`, `v1xC2bSingleStage`).
    pub operation_id: &'static str,
    pub summary: &'static str,
    /// The documented method.
    pub method: &'static str,
    /// Other methods clients are known to use, accepted too (reference §9).
    pub also: &'static [&'static str],
    /// The path after the gateway's prefix (`/{env}/ipg/v2/{market}/` or `/ipg/v1x/`).
    pub path: &'static str,
    /// Other paths clients are known to use for it (matched like `path`).
    pub aliases: &'static [&'static str],
    /// v1x: the port the real gateway serves this API on.
    pub port: Option<u16>,
    /// Status of a success (201 for money movements, 200 for sessions and queries).
    pub success: u16,
    /// Codes this operation answers with another status or text than its gateway's table
    /// gives (Cancel Direct Debit's `INS-6 Mandate does not exist`).
    pub answers: &'static [Code],
    /// v2: the markets that have it (empty: all five).
    pub markets: &'static [Market],
    pub params: &'static [Param],
    /// The `output_*` fields of a synchronous success, in order.
    pub outputs: &'static [&'static str],
    /// The codes the portal lists for it (the table of its gateway gives status and text).
    pub codes: &'static [&'static str],
}

impl Operation {
    /// Whether `path` (after the gateway prefix) names this operation: any case, with or
    /// without the trailing slash.
    pub fn matches(&self, path: &str) -> bool {
        let p = path.trim_matches('/');
        std::iter::once(self.path)
            .chain(self.aliases.iter().copied())
            .any(|c| c.trim_matches('/').eq_ignore_ascii_case(p))
    }

    /// Whether `method` is served: HEAD wherever GET is (RFC 9110 §9.3.2; the answer is the
    /// GET's without its body).
    pub fn allows(&self, method: &str) -> bool {
        let served = |m: &str| self.method == m || self.also.contains(&m);
        served(method) || (method == "HEAD" && served("GET"))
    }

    /// The fields every request must carry (missing → `INS-20`).
    pub fn required(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.params
            .iter()
            .filter(|p| p.presence == Presence::Required)
            .map(|p| p.name)
    }

    /// The full path on the main listener, `{env}` and `{market}` left as placeholders.
    pub fn full_path(&self) -> String {
        match self.gateway {
            Gateway::V2 => format!("/{{env}}/ipg/v2/{{market}}/{}", self.path),
            Gateway::V1x => format!("/ipg/v1x/{}", self.path),
        }
    }
}

/// The operation of `gateway` that `path` names.
pub fn find(gateway: Gateway, path: &str) -> Option<&'static Operation> {
    OPERATIONS
        .iter()
        .find(|o| o.gateway == gateway && o.matches(path))
}

/// The operation of `gateway` for `api`.
pub fn get(gateway: Gateway, api: Api) -> Option<&'static Operation> {
    OPERATIONS
        .iter()
        .find(|o| o.gateway == gateway && o.api == api)
}

/// The v1x operations, each with its port (the per-API listeners).
pub fn v1x() -> impl Iterator<Item = &'static Operation> {
    OPERATIONS.iter().filter(|o| o.gateway == Gateway::V1x)
}

impl Api {
    /// The v1x API's short name in `--mpesa-v1x-ports` (`c2b=18352,…`).
    pub fn port_key(self) -> &'static str {
        match self {
            Api::C2b => "c2b",
            Api::B2c => "b2c",
            Api::B2b => "b2b",
            Api::Reversal => "reversal",
            Api::QueryStatus => "status",
            Api::CustomerName => "name",
            _ => "",
        }
    }
}

/// Every resource URL of a server listening on `main` (an IP address and port) with the
/// v1x per-API listeners `ports` (operation and bound port): each v1x API on its own port
/// when it has one, else on the main listener, then the v2 APIs on the main listener
/// (sandbox environment, market left as `{market}`).
pub fn resource_urls(
    main: std::net::SocketAddr,
    ports: &[(&'static Operation, u16)],
    ssl: bool,
) -> Vec<mkoba_api_types::mpesa::ResourceUrl> {
    let address = main.ip().to_string();
    OPERATIONS
        .iter()
        .filter(|o| o.api != Api::NotBuilt)
        .map(|o| {
            let own = ports
                .iter()
                .find(|(p, _)| std::ptr::eq(*p, o))
                .map(|(_, port)| *port);
            let path = match o.gateway {
                Gateway::V1x => format!("/ipg/v1x/{}", o.path),
                Gateway::V2 => format!("/sandbox/ipg/v2/{{market}}/{}", o.path),
            };
            mkoba_api_types::mpesa::ResourceUrl {
                gateway: match o.gateway {
                    Gateway::V1x => "v1x",
                    Gateway::V2 => "v2",
                }
                .to_owned(),
                operation_id: o.operation_id.to_owned(),
                summary: o.summary.to_owned(),
                method: o.method.to_owned(),
                address: address.clone(),
                port: own.unwrap_or(main.port()),
                path,
                ssl,
            }
        })
        .collect()
}

const fn req(
    name: &'static str,
    rule: &'static str,
    example: &'static str,
    description: &'static str,
) -> Param {
    Param {
        name,
        presence: Presence::Required,
        rule,
        example,
        description,
    }
}

const fn opt(
    name: &'static str,
    rule: &'static str,
    example: &'static str,
    description: &'static str,
) -> Param {
    Param {
        name,
        presence: Presence::Optional,
        rule,
        example,
        description,
    }
}

const fn one_of(
    name: &'static str,
    rule: &'static str,
    example: &'static str,
    description: &'static str,
) -> Param {
    Param {
        name,
        presence: Presence::OneOf,
        rule,
        example,
        description,
    }
}

const AMOUNT: &str = r"^\d*\.?\d+$";
const MSISDN: &str = "^[0-9]{12,14}$";
const MSISDN_MZ: &str = "^2588[45][0-9]{7}$";
const SHORT_CODE: &str = "^([0-9A-Za-z]{4,12})$";
const REFERENCE: &str = r"^[0-9a-zA-Z \w+]{1,20}$";
const CONVERSATION: &str = r"^[0-9a-zA-Z \w+]{1,40}$";
const DESCRIPTION: &str = r"^[0-9a-zA-Z \w+]{1,256}$";
const CURRENCY: &str = "^[a-zA-Z]{1,3}$";
const THIRD_PARTY_REFERENCE: &str = "^[0-9a-zA-Z]{1,32}$";
const TOKEN: &str = r"^[0-9a-zA-Z \w=]{1,26}$";
const MANDATE: &str = "^[0-9]{1,12}$";

const P_AMOUNT: Param = req(
    "input_Amount",
    AMOUNT,
    "10.00",
    "Amount in the market's currency",
);
const P_COUNTRY: Param = req(
    "input_Country",
    "the market's: GHA, TZN, LES, DRC, MOZ",
    "TZN",
    "Country of the market in the path",
);
const P_CURRENCY: Param = req(
    "input_Currency",
    CURRENCY,
    "TZS",
    "Currency of the market: GHS, TZS, LSL, USD, MZN",
);
const P_MSISDN: Param = req(
    "input_CustomerMSISDN",
    MSISDN,
    "000000000001",
    "The customer's number with its country code",
);
const P_SHORT_CODE: Param = req(
    "input_ServiceProviderCode",
    SHORT_CODE,
    "000000",
    "The business's short code",
);
const P_REFERENCE: Param = req(
    "input_TransactionReference",
    REFERENCE,
    "T12344C",
    "The business's reference of the transaction",
);
const P_PURCHASED: Param = req(
    "input_PurchasedItemsDesc",
    DESCRIPTION,
    "Shoes",
    "What is bought",
);
const P_TPCID: Param = req(
    "input_ThirdPartyConversationID",
    CONVERSATION,
    "asv02e5958774f7ba228d83d0d689761",
    "The caller's unique id of this request (a reused one is INS-10)",
);
const P_MANDATE_REFERENCE: Param = req(
    "input_ThirdPartyReference",
    THIRD_PARTY_REFERENCE,
    "3333",
    "The mandate's reference",
);
const P_TOKEN: Param = one_of(
    "input_MsisdnToken",
    TOKEN,
    "cvgwUBZ3lAO9ivwhWAFeng==",
    "The customer's token from the mandate (this or the MSISDN)",
);
const P_TOKEN_MSISDN: Param = one_of(
    "input_CustomerMSISDN",
    MSISDN,
    "000000000001",
    "The customer's number (this or the token)",
);
const P_MANDATE_ID: Param = opt(
    "input_MandateID",
    MANDATE,
    "15045",
    "The mandate's id; must be the reference's",
);

const V1X_AMOUNT: Param = req("input_Amount", AMOUNT, "10", "Amount in meticais (MZN)");
const V1X_MSISDN: Param = req(
    "input_CustomerMSISDN",
    MSISDN_MZ,
    "258843330333",
    "The customer's Vodacom Mozambique number with 258",
);
const V1X_SHORT_CODE: Param = req(
    "input_ServiceProviderCode",
    SHORT_CODE,
    "171717",
    "The business's short code (sandbox: 171717)",
);
const V1X_TPR: Param = req(
    "input_ThirdPartyReference",
    CONVERSATION,
    "11114",
    "The caller's unique reference of this request (a reused one is INS-10)",
);
/// A query's reference: echoed, never a duplicate (the pages said a reused one is INS-10).
const V1X_QUERY_TPR: Param = req(
    "input_ThirdPartyReference",
    CONVERSATION,
    "11114",
    "The caller's reference of this query, echoed in the answer",
);

const MONEY_OUT: &[&str] = &[
    "output_ResponseCode",
    "output_ResponseDesc",
    "output_TransactionID",
    "output_ConversationID",
    "output_ThirdPartyConversationID",
];
const V1X_MONEY_OUT: &[&str] = &[
    "output_ResponseCode",
    "output_ResponseDesc",
    "output_TransactionID",
    "output_ConversationID",
    "output_ThirdPartyReference",
];

const C2B_CODES: &[&str] = &[
    "INS-0", "INS-1", "INS-6", "INS-9", "INS-10", "INS-13", "INS-15", "INS-17", "INS-20", "INS-21",
    "INS-26", "INS-28", "INS-30", "INS-998", "INS-2006", "INS-2051",
];
const V1X_MONEY_CODES: &[&str] = &[
    "INS-0", "INS-1", "INS-2", "INS-6", "INS-9", "INS-10", "INS-13", "INS-15", "INS-17", "INS-19",
    "INS-20", "INS-21", "INS-2006", "INS-2051",
];
/// A C2B's: a customer who declines on the virtual phone is v1x's `INS-5` "Transaction
/// cancelled by customer" (v2's tables have no such code).
const V1X_C2B_CODES: &[&str] = &[
    "INS-0", "INS-1", "INS-2", "INS-5", "INS-6", "INS-9", "INS-10", "INS-13", "INS-15", "INS-17",
    "INS-19", "INS-20", "INS-21", "INS-2006", "INS-2051",
];

/// Every operation of both gateways.
pub static OPERATIONS: &[Operation] = &[
    Operation {
        api: Api::GetSession,
        gateway: Gateway::V2,
        operation_id: "v2GetSession",
        summary: "Generate a session key from the encrypted API key",
        method: "GET",
        also: &[],
        path: "getSession/",
        aliases: &[],
        port: None,
        success: 200,
        answers: &[],
        markets: &[],
        params: &[],
        outputs: &[
            "output_ResponseCode",
            "output_ResponseDesc",
            "output_SessionID",
        ],
        codes: &["INS-0", "INS-989"],
    },
    Operation {
        api: Api::C2b,
        gateway: Gateway::V2,
        operation_id: "v2C2bSingleStage",
        summary: "Customer to business: the customer pays after a USSD prompt",
        method: "POST",
        also: &[],
        path: "c2bPayment/singleStage/",
        aliases: &[],
        port: None,
        success: 201,
        answers: &[],
        markets: &[],
        params: &[
            P_AMOUNT,
            P_MSISDN,
            P_COUNTRY,
            P_CURRENCY,
            P_SHORT_CODE,
            P_REFERENCE,
            P_TPCID,
            P_PURCHASED,
        ],
        outputs: MONEY_OUT,
        codes: C2B_CODES,
    },
    Operation {
        api: Api::B2c,
        gateway: Gateway::V2,
        operation_id: "v2B2cSingleStage",
        summary: "Business to customer: a payout from the short code",
        method: "POST",
        also: &[],
        path: "b2cPayment/",
        aliases: &["b2cPayment/singleStage/"],
        port: None,
        success: 201,
        answers: &[],
        markets: &[],
        params: &[
            P_AMOUNT,
            req(
                "input_CustomerMSISDN",
                MSISDN,
                "000000000001",
                "The customer paid",
            ),
            P_COUNTRY,
            P_CURRENCY,
            P_SHORT_CODE,
            P_REFERENCE,
            P_TPCID,
            req(
                "input_PaymentItemsDesc",
                DESCRIPTION,
                "Salary payment",
                "What is paid for",
            ),
        ],
        outputs: MONEY_OUT,
        codes: &[
            "INS-0", "INS-1", "INS-6", "INS-9", "INS-10", "INS-13", "INS-15", "INS-17", "INS-20",
            "INS-21", "INS-26", "INS-28", "INS-31", "INS-998", "INS-2006", "INS-2051",
        ],
    },
    Operation {
        api: Api::B2b,
        gateway: Gateway::V2,
        operation_id: "v2B2bSingleStage",
        summary: "Business to business: from one short code to another",
        method: "POST",
        also: &[],
        path: "b2bPayment/",
        aliases: &["b2bPayment/singleStage/"],
        port: None,
        success: 201,
        answers: &[],
        markets: &[],
        params: &[
            P_AMOUNT,
            req(
                "input_ReceiverPartyCode",
                SHORT_CODE,
                "000001",
                "The short code credited",
            ),
            req(
                "input_PrimaryPartyCode",
                SHORT_CODE,
                "000000",
                "The short code debited",
            ),
            P_COUNTRY,
            P_CURRENCY,
            P_REFERENCE,
            P_TPCID,
            P_PURCHASED,
        ],
        outputs: MONEY_OUT,
        codes: &[
            "INS-0", "INS-1", "INS-6", "INS-9", "INS-10", "INS-13", "INS-15", "INS-17", "INS-20",
            "INS-21", "INS-26", "INS-28", "INS-30", "INS-998", "INS-2006",
        ],
    },
    Operation {
        api: Api::Reversal,
        gateway: Gateway::V2,
        operation_id: "v2Reversal",
        summary: "Reverse all or part of a transaction",
        method: "PUT",
        also: &["POST"],
        path: "reversal/",
        aliases: &[],
        port: None,
        success: 201,
        answers: &[],
        markets: &[],
        params: &[
            opt(
                "input_ReversalAmount",
                AMOUNT,
                "25",
                "Part to reverse; all of it when absent",
            ),
            P_COUNTRY,
            req(
                "input_TransactionID",
                "^[0-9a-zA-Z]{1,20}$",
                "0000000000001",
                "The transaction to reverse",
            ),
            P_SHORT_CODE,
            P_TPCID,
        ],
        outputs: MONEY_OUT,
        codes: &[
            "INS-0", "INS-1", "INS-6", "INS-9", "INS-10", "INS-13", "INS-15", "INS-18", "INS-20",
            "INS-21", "INS-28", "INS-35", "INS-998", "INS-2006",
        ],
    },
    Operation {
        api: Api::QueryStatus,
        gateway: Gateway::V2,
        operation_id: "v2QueryTransactionStatus",
        summary: "A transaction's status, by transaction id or either conversation id",
        method: "GET",
        also: &["POST"],
        path: "queryTransactionStatus/",
        aliases: &[],
        port: None,
        success: 200,
        answers: &[],
        markets: &[],
        params: &[
            req(
                "input_QueryReference",
                "^[A-Za-z0-9]{1,32}$",
                "000000000000000000001",
                "Transaction id, conversation id or your ThirdPartyConversationID",
            ),
            P_COUNTRY,
            P_SHORT_CODE,
            P_TPCID,
        ],
        outputs: &[
            "output_ResponseCode",
            "output_ResponseDesc",
            "output_ResponseTransactionStatus",
            "output_ConversationID",
            "output_ThirdPartyConversationID",
            "output_OriginalTransactionID",
            "output_Reversed",
        ],
        codes: &[
            "INS-0", "INS-1", "INS-6", "INS-9", "INS-13", "INS-20", "INS-21", "INS-23", "INS-28",
            "INS-998",
        ],
    },
    Operation {
        api: Api::QueryBeneficiary,
        gateway: Gateway::V2,
        operation_id: "v2QueryBeneficiaryName",
        summary: "A customer's registered name (Vodafone Ghana)",
        method: "GET",
        also: &["POST"],
        path: "queryBeneficiaryName/",
        aliases: &[],
        port: None,
        success: 200,
        answers: &[],
        markets: &[Market::VodafoneGha],
        params: &[
            P_MSISDN,
            P_COUNTRY,
            P_SHORT_CODE,
            P_TPCID,
            req("input_KycQueryType", "^(Name)$", "Name", "What to query"),
        ],
        outputs: &[
            "output_ResponseCode",
            "output_ResponseDesc",
            "output_CustomerFirstName",
            "output_CustomerLastName",
            "output_ConversationID",
            "output_ThirdPartyConversationID",
        ],
        codes: &[
            "INS-0", "INS-1", "INS-6", "INS-9", "INS-13", "INS-20", "INS-21", "INS-28", "INS-32",
            "INS-997", "INS-998", "INS-2051",
        ],
    },
    Operation {
        api: Api::DirectDebitCreate,
        gateway: Gateway::V2,
        operation_id: "v2DirectDebitCreation",
        summary: "Create a direct-debit mandate (the customer confirms)",
        method: "POST",
        also: &[],
        path: "directDebitCreation/",
        aliases: &[],
        port: None,
        success: 201,
        answers: &[],
        markets: &[],
        params: &[
            P_MSISDN,
            P_COUNTRY,
            P_SHORT_CODE,
            P_MANDATE_REFERENCE,
            P_TPCID,
            req("input_AgreedTC", "^[0-1]{1}$", "1", "Terms accepted"),
            opt(
                "input_FirstPaymentDate",
                "^[0-9]{8}$",
                "20160324",
                "First payment (YYYYMMDD)",
            ),
            opt(
                "input_Frequency",
                "01 once, 02 daily, 03 weekly, 04 monthly, 05 quarterly, 06 half-yearly, 07 yearly, 08 on demand",
                "06",
                "How often",
            ),
            opt(
                "input_StartRangeOfDays",
                "^[0-9]{2}$",
                "01",
                "First day of the month payments may fall on",
            ),
            opt(
                "input_EndRangeOfDays",
                "^[0-9]{2}$",
                "22",
                "Last day of the month payments may fall on",
            ),
            opt(
                "input_ExpiryDate",
                "^[0-9]{8}$",
                "20161126",
                "End of the mandate (YYYYMMDD)",
            ),
        ],
        outputs: &[
            "output_ResponseCode",
            "output_ResponseDesc",
            "output_TransactionReference",
            "output_MsisdnToken",
            "output_ConversationID",
            "output_ThirdPartyConversationID",
            "output_MandateID",
        ],
        codes: &[
            "INS-0", "INS-1", "INS-6", "INS-9", "INS-10", "INS-13", "INS-17", "INS-20", "INS-21",
            "INS-28", "INS-36", "INS-39", "INS-40", "INS-41", "INS-42", "INS-43", "INS-998",
            "INS-2006", "INS-2051",
        ],
    },
    Operation {
        api: Api::DirectDebitPay,
        gateway: Gateway::V2,
        operation_id: "v2DirectDebitPayment",
        summary: "Collect a payment under an active mandate",
        method: "POST",
        also: &[],
        path: "directDebitPayment/",
        aliases: &[],
        port: None,
        success: 201,
        answers: &[],
        markets: &[],
        params: &[
            P_TOKEN,
            P_TOKEN_MSISDN,
            P_COUNTRY,
            P_SHORT_CODE,
            P_MANDATE_REFERENCE,
            P_TPCID,
            P_AMOUNT,
            P_CURRENCY,
            P_MANDATE_ID,
        ],
        outputs: &[
            "output_ResponseCode",
            "output_ResponseDesc",
            "output_TransactionID",
            "output_MsisdnToken",
            "output_ConversationID",
            "output_ThirdPartyConversationID",
        ],
        codes: &[
            "INS-0", "INS-1", "INS-6", "INS-9", "INS-10", "INS-13", "INS-15", "INS-19", "INS-20",
            "INS-21", "INS-26", "INS-28", "INS-50", "INS-51", "INS-52", "INS-58", "INS-998",
            "INS-2006", "INS-2051",
        ],
    },
    Operation {
        api: Api::DirectDebitQuery,
        gateway: Gateway::V2,
        operation_id: "v2QueryDirectDebit",
        summary: "A mandate's state, and whether the customer could pay an amount",
        method: "GET",
        also: &["POST"],
        path: "queryDirectDebit/",
        aliases: &[],
        port: None,
        success: 200,
        answers: &[wire::MANDATE_MISMATCH_ON_QUERY],
        markets: &[],
        params: &[
            req(
                "input_QueryBalanceAmount",
                "True or False",
                "True",
                "Whether to check the balance",
            ),
            opt(
                "input_BalanceAmount",
                AMOUNT,
                "200",
                "Amount to check (required when the flag is True)",
            ),
            P_COUNTRY,
            P_TOKEN_MSISDN,
            P_TOKEN,
            P_SHORT_CODE,
            P_TPCID,
            P_MANDATE_REFERENCE,
            P_MANDATE_ID,
            P_CURRENCY,
        ],
        outputs: &[
            "output_ResponseCode",
            "output_ResponseDesc",
            "output_ConversationID",
            "output_ThirdPartyConversationID",
            "output_TransactionReference",
            "output_SufficientBalance",
            "output_MsisdnToken",
            "output_MandateID",
            "output_MandateStatus",
            "output_AccountStatus",
            "output_FirstPaymentDate",
            "output_Frequency",
            "output_PaymentDayFrom",
            "output_PaymentDayTo",
            "output_ExpiryDate",
        ],
        codes: &[
            "INS-0", "INS-1", "INS-13", "INS-17", "INS-19", "INS-20", "INS-21", "INS-26", "INS-28",
            "INS-50", "INS-51", "INS-52", "INS-54", "INS-55", "INS-56", "INS-57", "INS-58",
            "INS-998", "INS-2051",
        ],
    },
    Operation {
        api: Api::DirectDebitCancel,
        gateway: Gateway::V2,
        operation_id: "v2DirectDebitCancel",
        summary: "Cancel a mandate",
        method: "PUT",
        also: &["POST"],
        path: "directDebitCancel/",
        aliases: &[],
        port: None,
        success: 201,
        answers: &[wire::MANDATE_MISSING],
        markets: &[],
        params: &[
            P_TOKEN,
            P_TOKEN_MSISDN,
            P_COUNTRY,
            P_SHORT_CODE,
            P_MANDATE_REFERENCE,
            P_TPCID,
            P_MANDATE_ID,
        ],
        outputs: &[
            "output_ResponseCode",
            "output_ResponseDesc",
            "output_TransactionReference",
            "output_MsisdnToken",
            "output_ConversationID",
            "output_ThirdPartyConversationID",
        ],
        codes: &[
            "INS-0", "INS-1", "INS-6", "INS-13", "INS-19", "INS-20", "INS-21", "INS-28", "INS-50",
            "INS-51", "INS-52", "INS-998", "INS-2051",
        ],
    },
    Operation {
        api: Api::NotBuilt,
        gateway: Gateway::V2,
        operation_id: "v2NotBuilt",
        summary: "C2B multi-stage and update-transaction-status: undocumented, answered INS-997",
        method: "POST",
        also: &["PUT"],
        path: "c2bPayment/multiStage/",
        aliases: &["updateTransactionStatus/"],
        port: None,
        success: 400,
        answers: &[],
        markets: &[],
        params: &[],
        outputs: &["output_ResponseCode", "output_ResponseDesc"],
        codes: &["INS-997"],
    },
    Operation {
        api: Api::C2b,
        gateway: Gateway::V1x,
        operation_id: "v1xC2bSingleStage",
        summary: "Customer to business: the customer pays after a USSD prompt",
        method: "POST",
        also: &[],
        path: "c2bPayment/singleStage/",
        aliases: &[],
        port: Some(18352),
        success: 201,
        answers: &[],
        markets: &[],
        params: &[P_REFERENCE, V1X_MSISDN, V1X_AMOUNT, V1X_TPR, V1X_SHORT_CODE],
        outputs: V1X_MONEY_OUT,
        codes: V1X_C2B_CODES,
    },
    Operation {
        api: Api::B2c,
        gateway: Gateway::V1x,
        operation_id: "v1xB2cPayment",
        summary: "Business to customer: a payout from the short code",
        method: "POST",
        also: &[],
        path: "b2cPayment/",
        aliases: &["b2cPayment/singleStage/"],
        port: Some(18345),
        success: 201,
        answers: &[],
        markets: &[],
        params: &[
            P_REFERENCE,
            req(
                "input_CustomerMSISDN",
                MSISDN_MZ,
                "258843330333",
                "The customer paid, with 258",
            ),
            V1X_AMOUNT,
            V1X_TPR,
            V1X_SHORT_CODE,
        ],
        outputs: V1X_MONEY_OUT,
        codes: V1X_MONEY_CODES,
    },
    Operation {
        api: Api::B2b,
        gateway: Gateway::V1x,
        operation_id: "v1xB2bPayment",
        summary: "Business to business: from one short code to another",
        method: "POST",
        also: &[],
        path: "b2bPayment/",
        aliases: &["b2bPayment/singleStage/"],
        port: Some(18349),
        success: 201,
        answers: &[],
        markets: &[],
        params: &[
            P_REFERENCE,
            V1X_AMOUNT,
            V1X_TPR,
            one_of(
                "input_PrimaryPartyCode",
                SHORT_CODE,
                "171717",
                "The short code debited (this or input_ServiceProviderCode)",
            ),
            one_of(
                "input_ServiceProviderCode",
                SHORT_CODE,
                "171717",
                "The short code debited, as some clients name it",
            ),
            req(
                "input_ReceiverPartyCode",
                SHORT_CODE,
                "979797",
                "The short code credited",
            ),
        ],
        outputs: V1X_MONEY_OUT,
        codes: &[
            "INS-0", "INS-1", "INS-2", "INS-6", "INS-9", "INS-10", "INS-13", "INS-15", "INS-17",
            "INS-19", "INS-20", "INS-21", "INS-2006",
        ],
    },
    Operation {
        api: Api::Reversal,
        gateway: Gateway::V1x,
        operation_id: "v1xReversal",
        summary: "Reverse all or part of a transaction",
        method: "PUT",
        also: &["POST"],
        path: "reversal/",
        aliases: &[],
        port: Some(18354),
        success: 201,
        answers: &[],
        markets: &[],
        params: &[
            req(
                "input_TransactionID",
                "^[0-9a-zA-Z]{1,20}$",
                "49XCD123F6",
                "The transaction to reverse",
            ),
            req(
                "input_SecurityCredential",
                "1 to 256 printable characters",
                "Mpesa2019",
                "The initiator's credential",
            ),
            req(
                "input_InitiatorIdentifier",
                "1 to 64 printable characters",
                "SJGW67fK",
                "Who reverses",
            ),
            V1X_TPR,
            V1X_SHORT_CODE,
            opt(
                "input_ReversalAmount",
                AMOUNT,
                "25",
                "Part to reverse; all of it when absent (input_Amount is read when this is absent)",
            ),
        ],
        outputs: V1X_MONEY_OUT,
        codes: &[
            "INS-0", "INS-1", "INS-2", "INS-9", "INS-10", "INS-13", "INS-15", "INS-18", "INS-19",
            "INS-20", "INS-21", "INS-24", "INS-25", "INS-26", "INS-2006",
        ],
    },
    Operation {
        api: Api::QueryStatus,
        gateway: Gateway::V1x,
        operation_id: "v1xQueryTransactionStatus",
        summary: "A transaction's status, by transaction id, conversation id or your reference",
        method: "GET",
        also: &["POST"],
        path: "queryTransactionStatus/",
        aliases: &[],
        port: Some(18353),
        success: 200,
        answers: &[],
        markets: &[],
        params: &[
            V1X_QUERY_TPR,
            req(
                "input_QueryReference",
                "^[A-Za-z0-9]{1,32}$",
                "5C1400CVRO",
                "Transaction id, conversation id or the ThirdPartyReference of the payment",
            ),
            V1X_SHORT_CODE,
        ],
        outputs: &[
            "output_ResponseCode",
            "output_ResponseDesc",
            "output_ResponseTransactionStatus",
            "output_ConversationID",
            "output_ThirdPartyReference",
        ],
        codes: &[
            "INS-0", "INS-1", "INS-2", "INS-13", "INS-19", "INS-20", "INS-21", "INS-23",
        ],
    },
    Operation {
        api: Api::CustomerName,
        gateway: Gateway::V1x,
        operation_id: "v1xQueryCustomerName",
        summary: "A customer's name, partly hidden",
        method: "GET",
        also: &["POST"],
        path: "queryCustomerName/",
        aliases: &[],
        port: Some(19323),
        success: 200,
        answers: &[],
        markets: &[],
        params: &[V1X_MSISDN, V1X_QUERY_TPR, V1X_SHORT_CODE],
        outputs: &[
            "output_ResponseCode",
            "output_ResponseDesc",
            "output_CustomerMSISDN",
            "output_FirstName",
            "output_SecondName",
            "output_ConversationID",
            "output_ThirdPartyReference",
        ],
        codes: &[
            "INS-0", "INS-1", "INS-2", "INS-13", "INS-19", "INS-20", "INS-21", "INS-2051",
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_in_any_case_with_or_without_the_slash() {
        assert_eq!(
            find(Gateway::V2, "getSession/").unwrap().api,
            Api::GetSession
        );
        assert_eq!(
            find(Gateway::V2, "c2bPayment/singleStage").unwrap().api,
            Api::C2b
        );
        assert_eq!(
            find(Gateway::V2, "b2cPayment/singleStage/").unwrap().api,
            Api::B2c
        );
        assert_eq!(
            find(Gateway::V2, "querydirectDebit/").unwrap().api,
            Api::DirectDebitQuery
        );
        assert!(find(Gateway::V2, "nothing/").is_none());
        assert!(find(Gateway::V2, "queryCustomerName/").is_none());
        assert_eq!(
            find(Gateway::V1x, "queryCustomerName").unwrap().api,
            Api::CustomerName
        );
        assert!(find(Gateway::V1x, "getSession/").is_none());
    }

    #[test]
    fn ids_are_unique_and_every_v1x_api_has_its_own_port() {
        let mut ids: Vec<_> = OPERATIONS.iter().map(|o| o.operation_id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), OPERATIONS.len());
        let mut ports: Vec<_> = v1x().map(|o| o.port.expect("a v1x port")).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports, [18345, 18349, 18352, 18353, 18354, 19323]);
    }
}
