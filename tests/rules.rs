//! Validation rules that compare several settings: where clients dial, where the VIP can
//! live, and what to change when listeners collide. Each case plants one fault.

use cpgen::diag::{Code, Diagnostic, Severity};
use cpgen::{Config, Error};

const THREE_MASTERS: &str = r#"
[[masters]]
name = "kubem00"
address = "10.10.10.80"
[[masters]]
name = "kubem01"
address = "10.10.10.81"
[[masters]]
name = "kubem02"
address = "10.10.10.82"
"#;

/// Every finding for `head` followed by three masters (and `tail`).
fn findings(head: &str, tail: &str) -> (String, Vec<Diagnostic>) {
    let text = format!("{head}\n{THREE_MASTERS}\n{tail}");
    let diagnostics = match Config::parse("c.toml", &text).and_then(|c| c.validate()) {
        Ok(checked) => checked.report.diagnostics().to_vec(),
        Err(Error::Invalid(report)) => report.diagnostics().to_vec(),
        Err(other) => panic!("{other}"),
    };
    (text, diagnostics)
}

fn with_code(diagnostics: &[Diagnostic], code: Code) -> Vec<&Diagnostic> {
    diagnostics.iter().filter(|d| d.code == code).collect()
}

const ON_MASTERS_VIP: &str = "[load_balancer]\nmode = \"on-masters\"\nvip = \"10.10.10.100\"\n";
const EXTERNAL_LB: &str = "[[load_balancer.hosts]]\nname = \"lb\"\naddress = \"10.10.10.2\"\n";

#[test]
fn an_endpoint_port_where_nothing_listens_is_an_error_at_both_keys() {
    let (text, all) = findings(
        "[api]\nendpoint = \"10.10.10.80\"\nport = 443\n",
        ON_MASTERS_VIP,
    );
    let dead = with_code(&all, Code::EndpointPortMismatch);
    assert_eq!(dead.len(), 1, "{all:#?}");
    let dead = dead[0];
    assert_eq!(dead.severity, Severity::Error);
    assert!(dead.message.contains("10.10.10.80:443"), "{}", dead.message);
    assert!(
        dead.message.contains("kube-apiserver on 6443"),
        "{}",
        dead.message
    );
    assert!(dead.message.contains("haproxy on 8443"), "{}", dead.message);
    let primary = dead.primary.as_ref().unwrap();
    assert_eq!(&text[primary.span().unwrap()], "\"10.10.10.80\"");
    assert_eq!(&text[dead.secondary[0].span().unwrap()], "443");
    assert!(dead.help.as_deref().unwrap().contains("api.port = 6443"));
}

#[test]
fn a_load_balancer_endpoint_on_another_port_is_an_error() {
    let (_, all) = findings(
        "[api]\nendpoint = \"lb\"\nport = 443\n[load_balancer]\nbind_port = 6443\n",
        EXTERNAL_LB,
    );
    let dead = with_code(&all, Code::EndpointPortMismatch);
    assert_eq!(dead.len(), 1, "{all:#?}");
    assert_eq!(dead[0].severity, Severity::Error);
    assert!(dead[0].help.as_deref().unwrap().contains("api.port = 6443"));
}

#[test]
fn endpoints_that_reach_a_listener_pass() {
    for (head, tail) in [
        // A master on the apiserver's port, and on on-masters HAProxy's port.
        (
            "[api]\nendpoint = \"10.10.10.80\"\nport = 6443\n",
            ON_MASTERS_VIP,
        ),
        (
            "[api]\nendpoint = \"kubem00\"\nport = 8443\n",
            ON_MASTERS_VIP,
        ),
        // The VIP on HAProxy's port (the default).
        ("", ON_MASTERS_VIP),
        // The load balancer by name and by address.
        ("[api]\nendpoint = \"lb\"\n", EXTERNAL_LB),
        (
            "[api]\nendpoint = \"10.10.10.2\"\nport = 6443\n",
            EXTERNAL_LB,
        ),
        // A name outside the plan (an external balancer) cannot be checked.
        (
            "[api]\nendpoint = \"api.example.org\"\nport = 443\n",
            EXTERNAL_LB,
        ),
    ] {
        let (_, all) = findings(head, tail);
        assert!(
            with_code(&all, Code::EndpointPortMismatch).is_empty(),
            "{head}{tail}: {all:#?}"
        );
    }
}

#[test]
fn an_endpoint_of_one_master_warns_and_names_the_vip_or_balancer() {
    let (_, all) = findings(
        "[api]\nendpoint = \"10.10.10.81\"\nport = 6443\n",
        ON_MASTERS_VIP,
    );
    let single = with_code(&all, Code::SingleMasterEndpoint);
    assert_eq!(single.len(), 1, "{all:#?}");
    assert_eq!(single[0].severity, Severity::Warning);
    assert!(
        single[0].message.contains("kubem01"),
        "{}",
        single[0].message
    );
    assert!(
        single[0].message.contains("10.10.10.100"),
        "{}",
        single[0].message
    );
    assert_eq!(
        single[0].help.as_deref(),
        Some("set api.endpoint = \"10.10.10.100\"")
    );

    let (_, all) = findings("[api]\nendpoint = \"kubem00\"\n", EXTERNAL_LB);
    let single = with_code(&all, Code::SingleMasterEndpoint);
    assert_eq!(single.len(), 1, "{all:#?}");
    assert!(single[0].message.contains("`lb`"), "{}", single[0].message);

    // No VIP and no balancer: there is nothing better to dial (CP701 covers the default).
    let (_, all) = findings("[api]\nendpoint = \"kubem00\"\n", "");
    assert!(
        with_code(&all, Code::SingleMasterEndpoint).is_empty(),
        "{all:#?}"
    );
}

#[test]
fn a_vip_outside_every_master_network_warns() {
    let far = "[load_balancer]\nmode = \"on-masters\"\nvip = \"10.10.20.100\"\n";
    let (text, all) = findings("", far);
    let vip = with_code(&all, Code::VipOutsideMasterNetwork);
    assert_eq!(vip.len(), 1, "{all:#?}");
    assert_eq!(vip[0].severity, Severity::Warning);
    assert!(
        vip[0].message.contains("10.10.10.0/24"),
        "{}",
        vip[0].message
    );
    assert_eq!(
        &text[vip[0].primary.as_ref().unwrap().span().unwrap()],
        "\"10.10.20.100\""
    );

    // host_cidrs that put the VIP on the masters' network: no warning.
    let (_, all) = findings("[network]\nhost_cidrs = [\"10.10.0.0/16\"]\n", far);
    assert!(
        with_code(&all, Code::VipOutsideMasterNetwork).is_empty(),
        "{all:#?}"
    );
    // host_cidrs with the VIP in a network no master is on: warned.
    let (_, all) = findings(
        "[network]\nhost_cidrs = [\"10.10.10.0/24\", \"10.10.20.0/24\"]\n",
        far,
    );
    assert_eq!(
        with_code(&all, Code::VipOutsideMasterNetwork).len(),
        1,
        "{all:#?}"
    );
    // The VIP beside the masters: no warning.
    let (_, all) = findings("", ON_MASTERS_VIP);
    assert!(
        with_code(&all, Code::VipOutsideMasterNetwork).is_empty(),
        "{all:#?}"
    );
}

#[test]
fn listener_collision_help_names_a_key_of_the_colliding_listeners() {
    for (head, key) in [
        ("[api]\nbind_port = 2379\n", "api.bind_port = 6443"),
        ("[etcd]\npeer_port = 2379\n", "etcd.peer_port = 2380"),
        (
            "[load_balancer]\nmode = \"on-masters\"\nbind_port = 6443\n",
            "load_balancer.bind_port = 8443",
        ),
        // The usual port is taken too: the next free one.
        (
            "[api]\nbind_port = 8443\n[load_balancer]\nmode = \"on-masters\"\nbind_port = 8443\n",
            "load_balancer.bind_port = 8444",
        ),
    ] {
        let (_, all) = findings(head, "");
        let clash = with_code(&all, Code::ListenerCollision);
        assert_eq!(clash.len(), 1, "{head}: {all:#?}");
        let help = clash[0].help.as_deref().unwrap();
        assert!(help.ends_with(key), "{head}: {help}");
    }
}

#[test]
fn an_endpoint_on_a_worker_is_an_error() {
    let workers = "[[workers]]\nname = \"node0\"\naddress = \"10.10.10.100\"\n";
    for endpoint in ["node0", "10.10.10.100"] {
        let (_, all) = findings(&format!("[api]\nendpoint = \"{endpoint}\"\n"), workers);
        let dead = with_code(&all, Code::EndpointPortMismatch);
        assert_eq!(dead.len(), 1, "{endpoint}: {all:#?}");
        assert!(
            dead[0].message.contains("worker `node0`"),
            "{}",
            dead[0].message
        );
    }
}

#[test]
fn endpoints_no_client_can_dial_or_that_resolvers_misread_are_errors() {
    for endpoint in [
        "0.0.0.0",
        "::",
        "224.0.0.1",
        "010.10.10.2",
        "168430082",
        "0x0a0a0a02",
    ] {
        let (_, all) = findings(&format!("[api]\nendpoint = \"{endpoint}\"\n"), EXTERNAL_LB);
        let invalid = with_code(&all, Code::InvalidSan);
        assert_eq!(invalid.len(), 1, "{endpoint}: {all:#?}");
        assert_eq!(invalid[0].severity, Severity::Error);
    }
    // The same in extra_sans.
    let (_, all) = findings("[api]\nextra_sans = [\"010.10.10.2\"]\n", EXTERNAL_LB);
    assert_eq!(with_code(&all, Code::InvalidSan).len(), 1, "{all:#?}");
}

#[test]
fn an_endpoint_of_one_of_several_balancers_warns() {
    let two = "[[load_balancer.hosts]]\nname = \"lb0\"\naddress = \"10.10.10.2\"\n\
               [[load_balancer.hosts]]\nname = \"lb1\"\naddress = \"10.10.10.3\"\n";
    let (_, all) = findings("[api]\nendpoint = \"lb0\"\n", two);
    let warned = with_code(&all, Code::NoLoadBalancer);
    assert_eq!(warned.len(), 1, "{all:#?}");
    assert!(warned[0].message.contains("`lb0`"), "{}", warned[0].message);
    assert!(warned[0].message.contains("`lb1`"), "{}", warned[0].message);
    // A name outside the plan that resolves to both is what the warning asks for.
    let (_, all) = findings("[api]\nendpoint = \"api.example.org\"\n", two);
    assert!(with_code(&all, Code::NoLoadBalancer).is_empty(), "{all:#?}");
}

#[test]
fn a_vip_that_is_its_networks_own_or_broadcast_address_warns() {
    for vip in ["10.10.10.0", "10.10.10.255"] {
        let tail = format!("[load_balancer]\nmode = \"on-masters\"\nvip = \"{vip}\"\n");
        let (_, all) = findings("", &tail);
        let warned = with_code(&all, Code::VipOutsideMasterNetwork);
        assert_eq!(warned.len(), 1, "{vip}: {all:#?}");
        assert!(
            warned[0].message.contains("10.10.10.0/24"),
            "{}",
            warned[0].message
        );
    }
}

#[test]
fn a_list_entry_written_with_single_brackets_twice_says_to_use_double_brackets() {
    for (header, list) in [
        ("[masters]", "[[masters]]"),
        ("[workers]", "[[workers]]"),
        ("[load_balancer.hosts]", "[[load_balancer.hosts]]"),
    ] {
        let text = format!(
            "{header}\nname = \"a\"\naddress = \"10.0.0.1\"\n{header}\nname = \"b\"\naddress = \"10.0.0.2\"\n"
        );
        let Err(Error::Invalid(report)) = Config::parse("c.toml", &text) else {
            panic!("{header} twice parsed")
        };
        let help = report.diagnostics()[0].help.clone().unwrap_or_default();
        assert!(help.contains(list), "{header}: {help}");
    }
}

#[test]
fn unit_values_hold_nothing_systemd_would_expand() {
    for etcd in [
        "data_dir = \"/var/lib/%h\"",
        "data_dir = \"/var/lib/$HOME\"",
        "data_dir = \"/var/lib/${X}\"",
        "data_dir = \"/var/lib/a\\\"b\"",
        "initial_cluster_token = \"tok%n\"",
        "initial_cluster_token = \"$TOKEN\"",
        "initial_cluster_token = \"a\\\"b\"",
    ] {
        let (_, all) = findings(&format!("[etcd]\n{etcd}\n"), EXTERNAL_LB);
        let refused = all
            .iter()
            .filter(|d| matches!(d.code, Code::InvalidDataDir | Code::EmptyClusterToken))
            .count();
        assert_eq!(refused, 1, "{etcd}: {all:#?}");
    }
}

#[test]
fn a_machine_written_twice_in_two_forms_or_at_a_broadcast_address_is_refused() {
    for worker in ["::ffff:10.10.10.80", "255.255.255.255", "10.10.10.255"] {
        let (_, all) = findings(
            "",
            &format!("{EXTERNAL_LB}[[workers]]\nname = \"node0\"\naddress = \"{worker}\"\n"),
        );
        let refused = with_code(&all, Code::InvalidAddress).len()
            + with_code(&all, Code::DuplicateAddress).len();
        // 10.10.10.255 may be a host of a larger network: only the first two are refused.
        assert_eq!(
            refused,
            usize::from(worker != "10.10.10.255"),
            "{worker}: {all:#?}"
        );
    }
}

#[test]
fn nodes_keep_to_the_clusters_ip_family_and_to_names_a_certificate_holds() {
    let v6_worker = "[[workers]]\nname = \"w0\"\naddress = \"2001:db8::100\"\n";
    let (text, all) = findings(EXTERNAL_LB, v6_worker);
    let mismatch = with_code(&all, Code::IpFamilyMismatch);
    assert_eq!(mismatch.len(), 1, "{text}\n{all:#?}");
    assert!(mismatch[0].message.contains("worker `w0`"), "{all:#?}");

    // 52 characters fit `system:node:<name>` into a 64-character CN; 53 do not.
    let worker =
        |name: &str| format!("[[workers]]\nname = \"{name}\"\naddress = \"10.10.10.90\"\n");
    let (_, all) = findings(EXTERNAL_LB, &worker(&"a".repeat(52)));
    assert!(with_code(&all, Code::InvalidName).is_empty(), "{all:#?}");
    let (_, all) = findings(EXTERNAL_LB, &worker(&"a".repeat(53)));
    let long = with_code(&all, Code::InvalidName);
    assert_eq!(long.len(), 1, "{all:#?}");
    assert!(long[0].message.contains("system:node:"), "{all:#?}");
    // A master that is a node is held to the node's limit; one that is not, to etcd's.
    let master = "a".repeat(60);
    let masters = format!("[[masters]]\nname = \"{master}\"\naddress = \"10.10.10.79\"\n");
    let (_, all) = findings(EXTERNAL_LB, &masters);
    assert!(with_code(&all, Code::InvalidName).is_empty(), "{all:#?}");
    let (_, all) = findings(
        &format!("[control_plane]\nworkloads = true\n{EXTERNAL_LB}"),
        &masters,
    );
    assert_eq!(with_code(&all, Code::InvalidName).len(), 1, "{all:#?}");
}

#[test]
fn a_mistyped_workloads_is_a_type_error_and_nothing_else() {
    let head = format!(
        "[api]\nadmission_plugins = [\"ValidatingAdmissionWebhook\"]\n[control_plane]\nworkloads = \"true\"\n{EXTERNAL_LB}"
    );
    let (text, all) = findings(&head, "");
    assert_eq!(
        with_code(&all, Code::WrongType).len(),
        1,
        "{text}\n{all:#?}"
    );
    assert!(
        with_code(&all, Code::WebhooksUnreachable).is_empty(),
        "{all:#?}"
    );
    let head = head.replace("\"true\"", "false");
    let (_, all) = findings(&head, "");
    assert_eq!(
        with_code(&all, Code::WebhooksUnreachable).len(),
        1,
        "{all:#?}"
    );
    let (_, all) = findings(&head.replace("false", "true"), "");
    assert!(
        with_code(&all, Code::WebhooksUnreachable).is_empty(),
        "{all:#?}"
    );
}

#[test]
fn authorization_modes_and_plugins_the_units_cannot_run_are_errors() {
    for (mode, why) in [
        ("AlwaysAllow", "allows every authenticated request"),
        ("AlwaysDeny", "denies every request"),
        ("ABAC", "--authorization-policy-file"),
        ("Webhook", "--authorization-webhook-config-file"),
    ] {
        let head =
            format!("[api]\nauthorization_modes = [\"Node\", \"{mode}\", \"RBAC\"]\n{EXTERNAL_LB}");
        let (text, all) = findings(&head, "");
        let found = with_code(&all, Code::UnknownAuthorizationMode);
        assert_eq!(found.len(), 1, "{text}\n{all:#?}");
        assert!(found[0].message.contains(why), "{all:#?}");
        assert_eq!(found[0].severity, Severity::Error);
    }
    for (plugin, why) in [
        ("AlwaysDeny", "rejects every request"),
        ("EventRateLimit", "--admission-control-config-file"),
        ("ImagePolicyWebhook", "--admission-control-config-file"),
    ] {
        let head = format!(
            "[api]\nadmission_plugins = [\"NodeRestriction\", \"{plugin}\"]\n{EXTERNAL_LB}"
        );
        let (text, all) = findings(&head, "");
        let found = with_code(&all, Code::UnknownAdmissionPlugin);
        assert_eq!(found.len(), 1, "{text}\n{all:#?}");
        assert!(found[0].message.contains(why), "{all:#?}");
    }
}
