//! The codes a subscriber dials once so that the carrier forwards calls to
//! the forwarding number (3GPP TS 22.030 for GSM; `*71`/`*73` for US CDMA).

use serde::Serialize;

use super::phone::PhoneNumber;

/// The codes the subscriber dials once on the phone so that the carrier
/// forwards calls to the forwarding number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub(crate) struct ForwardingCodes {
    pub gsm: GsmCodes,
    /// Only for North American forwarding numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub cdma: Option<CdmaCodes>,
}

/// GSM (3GPP TS 22.030) conditional call forwarding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub(crate) struct GsmCodes {
    pub busy: Code,
    pub no_reply: Code,
    pub unreachable: Code,
    pub all_conditional: Code,
}

/// US CDMA busy / no-answer forwarding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub(crate) struct CdmaCodes {
    pub busy_no_answer: Code,
}

/// What to dial to switch one kind of forwarding on and off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"activate": "**67*+12025550100#", "deactivate": "##67#"}))]
pub(crate) struct Code {
    pub activate: String,
    pub deactivate: String,
}

impl ForwardingCodes {
    pub(crate) fn for_number(forwarding: &PhoneNumber) -> Self {
        let gsm = |service: &str| Code {
            activate: format!("**{service}*{forwarding}#"),
            deactivate: format!("##{service}#"),
        };
        Self {
            gsm: GsmCodes {
                busy: gsm("67"),
                no_reply: gsm("61"),
                unreachable: gsm("62"),
                all_conditional: gsm("004"),
            },
            cdma: forwarding
                .north_american_national()
                .map(|national| CdmaCodes {
                    busy_no_answer: Code {
                        activate: format!("*71{national}"),
                        deactivate: "*73".to_owned(),
                    },
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::Region;

    #[test]
    fn codes_for_a_north_american_number_match_the_contract() {
        let n = PhoneNumber::parse("+12025550100", Region::default()).unwrap();
        assert_eq!(
            serde_json::to_value(ForwardingCodes::for_number(&n)).unwrap(),
            serde_json::json!({
                "gsm": {"busy":            {"activate": "**67*+12025550100#",  "deactivate": "##67#"},
                        "no_reply":        {"activate": "**61*+12025550100#",  "deactivate": "##61#"},
                        "unreachable":     {"activate": "**62*+12025550100#",  "deactivate": "##62#"},
                        "all_conditional": {"activate": "**004*+12025550100#", "deactivate": "##004#"}},
                "cdma": {"busy_no_answer": {"activate": "*712025550100", "deactivate": "*73"}}
            })
        );
    }

    #[test]
    fn other_countries_get_no_cdma_codes() {
        let n = PhoneNumber::parse("+442079460018", Region::default()).unwrap();
        let codes = ForwardingCodes::for_number(&n);
        assert_eq!(codes.cdma, None);
        assert_eq!(codes.gsm.busy.activate, "**67*+442079460018#");
        assert!(!serde_json::to_string(&codes).unwrap().contains("cdma"));
    }
}
