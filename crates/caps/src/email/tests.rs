//! The email service on its own: scopes, and mail only to its owner.

use super::outbox::{EmailError, Outgoing};
use super::{Email, Sending};
use crate::testing::TestEnv;
use valbox_model::Scope::{EmailRead, EmailWrite};

fn sending(recipients: Vec<String>, subject: &str) -> Sending {
    Sending {
        recipients,
        mail: mail(subject),
        attachments: 0,
    }
}

fn mail(subject: &str) -> Outgoing {
    Outgoing {
        from_name: None,
        reply_to: Vec::new(),
        subject: subject.into(),
        text: Some("hello".into()),
        html: None,
        loop_trace: Vec::new(),
    }
}

#[tokio::test]
async fn sending_needs_email_write_and_reading_the_outbox_email_read() {
    let env = TestEnv::new();
    let email: Email = env.open();
    let alice = env.user("alice").await;
    let mut reader = env.principal(&alice, &[EmailRead]);
    let mut sender = env.principal(&alice, &[EmailWrite]);

    let refused = email
        .send(&mut reader, None, sending(Vec::new(), "a"))
        .await;
    assert!(matches!(refused, Err(EmailError::Denied(d)) if d.scope == EmailWrite));
    let id = email
        .send(&mut sender, None, sending(Vec::new(), "b"))
        .await
        .unwrap();
    let refused = email.outbox(&mut sender).await;
    assert!(matches!(refused, Err(EmailError::Denied(d)) if d.scope == EmailRead));
    let outbox = email.outbox(&mut reader).await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(
        (outbox[0].id.as_str(), outbox[0].subject.as_str()),
        (id.as_str(), "b")
    );
}

#[tokio::test]
async fn a_val_mails_only_its_owner() {
    let env = TestEnv::new();
    let email: Email = env.open();
    let alice = env.user("alice").await;
    env.user("bob").await;
    let mut call = env.grant(&alice, "val", &[EmailWrite]);
    let refused = email
        .send(
            &mut call,
            Some("val"),
            sending(vec!["bob@example.com".into()], "x"),
        )
        .await;
    assert!(
        matches!(refused, Err(EmailError::Invalid(_))),
        "{refused:?}"
    );
    email
        .send(
            &mut call,
            Some("val"),
            sending(vec!["alice@example.com".into()], "y"),
        )
        .await
        .unwrap();
    let mut bob_reader = env.principal(&env.user("carol").await, &[EmailRead]);
    assert!(email.outbox(&mut bob_reader).await.unwrap().is_empty());
}

/// Through the import: a call without `email:write` is refused as such
/// (and the refusal recorded) whatever its message holds.
#[tokio::test]
async fn the_import_checks_the_scope_before_the_message() {
    use crate::Ctx;
    use valbox_runtime::bindings::email::{Attachment, Host, Message};
    use valbox_runtime::bindings::types::Error;

    let env = TestEnv::new();
    let email: Email = env.open();
    let alice = env.user("alice").await;
    let mut grant = env.grant(&alice, "val", &[EmailRead]);
    let mut ctx = Ctx {
        grant: &mut grant,
        cap: &email,
        call: &mut (),
    };
    let message = Message {
        to: Vec::new(),
        cc: Vec::new(),
        bcc: Vec::new(),
        from: None,
        reply_to: Vec::new(),
        subject: None,
        text: Some("hi".into()),
        html: None,
        headers: Vec::new(),
        attachments: vec![Attachment {
            content: b"x".to_vec(),
            filename: "x.txt".into(),
            content_type: None,
            disposition: None,
            content_id: None,
        }],
    };
    let refused = Host::send(&mut ctx, message).await;
    assert!(matches!(refused, Err(Error::Denied(_))), "{refused:?}");
    assert_eq!(grant.denials(), [EmailWrite]);
}

#[tokio::test]
async fn attachments_are_refused_after_the_scope_check() {
    let env = TestEnv::new();
    let email: Email = env.open();
    let alice = env.user("alice").await;
    let mut sender = env.principal(&alice, &[EmailWrite]);
    let mut with_attachment = sending(Vec::new(), "a");
    with_attachment.attachments = 1;
    let refused = email.send(&mut sender, None, with_attachment).await;
    assert!(
        matches!(&refused, Err(EmailError::Invalid(m)) if m.contains("attachments")),
        "{refused:?}"
    );
}
