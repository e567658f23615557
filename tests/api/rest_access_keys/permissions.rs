//! Who may do what, by every credential form.

use super::*;

#[tokio::test]
async fn accesskeys_permissions_follow_the_graphql_rules() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (alpha, alpha_user, alpha_admin) = customer_with_admin(&app, &admin).await;
    let (_, _, beta_admin) = customer_with_admin(&app, &admin).await;
    let agent_user = unique("agent").replace('-', "");
    app.seed_agent(&alpha_user, &agent_user, 16).await;
    let agent = app.token(&agent_user, "a-long-password").await;
    let (alpha_key_id, alpha_key) =
        create_ok(&app, Cred::Bearer(&alpha_admin), json!({"name": "a"})).await;

    // A super admin creates for any customer through `customer_id`, and
    // without it for the platform's own customer.
    let (by_super, _) = create_ok(&app, Cred::Bearer(&admin), json!({"customer_id": alpha})).await;
    let (platform_key, _) = create_ok(&app, Cred::Bearer(&admin), json!({})).await;
    let alpha_ids = |reply: &Reply| -> Vec<String> {
        reply.body["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let listed = call(
        &app,
        Method::GET,
        "/v1.0/accesskeys",
        Cred::Bearer(&admin),
        &[("customer_id", &alpha)],
        None,
    )
    .await;
    assert_eq!(alpha_ids(&listed), [by_super.clone(), alpha_key_id.clone()]);
    let listed = call(
        &app,
        Method::GET,
        "/v1.0/accesskeys",
        Cred::Bearer(&admin),
        &[],
        None,
    )
    .await;
    assert_eq!(alpha_ids(&listed), [platform_key]);
    let path = format!("/v1.0/accesskeys/{alpha_key_id}");
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(json!({"detail": "seen by the platform"}))),
    ] {
        let reply = call(&app, method, &path, Cred::Bearer(&admin), &[], body).await;
        assert_eq!(reply.status, 200, "super admin: {:?}", reply.body);
    }

    // The customer's own admins and keys, by every credential form.
    for cred in [
        Cred::Bearer(&alpha_admin),
        Cred::Token(&alpha_admin),
        Cred::Token(&alpha_key),
        Cred::AccessKey(&alpha_key),
        Cred::Bearer(&alpha_key),
    ] {
        let listed = call(&app, Method::GET, "/v1.0/accesskeys", cred, &[], None).await;
        assert_eq!(alpha_ids(&listed), [by_super.clone(), alpha_key_id.clone()]);
        let read = call(&app, Method::GET, &path, cred, &[], None).await;
        assert_eq!(read.status, 200, "{:?}", read.body);
        let renamed = call(
            &app,
            Method::PUT,
            &path,
            cred,
            &[],
            Some(json!({"name": "renamed"})),
        )
        .await;
        assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    }
    // A key cannot create keys, for its own customer or any.
    for body in [json!({}), json!({"customer_id": alpha})] {
        let refused = call(
            &app,
            Method::POST,
            "/v1.0/accesskeys",
            Cred::AccessKey(&alpha_key),
            &[],
            Some(body),
        )
        .await;
        assert_eq!(
            (refused.status, code(&refused)),
            (403, "FORBIDDEN"),
            "{:?}",
            refused.body
        );
    }

    // Another customer's admin, and an agent without CUSTOMER_ADMIN, are
    // refused as deleteAccessKey refuses them: FORBIDDEN.
    for (who, token) in [
        ("another customer's admin", &beta_admin),
        ("a plain agent", &agent),
    ] {
        for (method, path, params, body) in [
            (Method::GET, path.as_str(), &[][..], None),
            (
                Method::PUT,
                path.as_str(),
                &[],
                Some(json!({"name": "mine"})),
            ),
            (Method::DELETE, path.as_str(), &[], None),
            (
                Method::GET,
                "/v1.0/accesskeys",
                &[("customer_id", alpha.as_str())][..],
                None,
            ),
            (
                Method::POST,
                "/v1.0/accesskeys",
                &[],
                Some(json!({"customer_id": alpha})),
            ),
        ] {
            let reply = call(
                &app,
                method.clone(),
                path,
                Cred::Bearer(token),
                params,
                body,
            )
            .await;
            assert_eq!(
                (reply.status, code(&reply)),
                (403, "FORBIDDEN"),
                "{who} {method} {path}: {:?}",
                reply.body
            );
        }
    }
    let plain_list = call(
        &app,
        Method::GET,
        "/v1.0/accesskeys",
        Cred::Bearer(&agent),
        &[],
        None,
    )
    .await;
    assert_eq!(plain_list.status, 403, "{:?}", plain_list.body);

    // No credential, or a login token where only keys go.
    for (method, path) in [
        (Method::GET, "/v1.0/accesskeys"),
        (Method::POST, "/v1.0/accesskeys"),
        (Method::GET, path.as_str()),
        (Method::PUT, path.as_str()),
        (Method::DELETE, path.as_str()),
    ] {
        let reply = call(
            &app,
            method.clone(),
            path,
            Cred::Nothing,
            &[],
            Some(json!({})),
        )
        .await;
        assert_eq!(
            (reply.status, code(&reply)),
            (401, "UNAUTHENTICATED"),
            "{method} {path}"
        );
        assert_eq!(reply.headers["www-authenticate"], "Bearer");
    }
    let reply = call(
        &app,
        Method::GET,
        "/v1.0/accesskeys",
        Cred::AccessKey(&alpha_admin),
        &[],
        None,
    )
    .await;
    assert_eq!(
        reply.status, 401,
        "?accesskey= refuses login tokens: {:?}",
        reply.body
    );

    // Nothing the refused callers sent changed the key.
    let read = call(&app, Method::GET, &path, Cred::Bearer(&admin), &[], None).await;
    assert_eq!(
        (read.body["name"].as_str(), read.body["tm_delete"].as_str()),
        (Some("renamed"), Some(UNSET))
    );
}
