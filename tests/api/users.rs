//! The users service's data: profiles, and the seeded authorization model.

use crate::helpers::TestApp;

#[tokio::test]
async fn every_module_has_a_permission_per_flag_and_the_system_roles_are_seeded() {
    let app = TestApp::spawn().await;
    let db = app.db().await;

    let permissions: i64 = db
        .query_one("SELECT count(*) FROM users.permissions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(permissions, 17 * 6);
    let roles = db
        .query(
            "SELECT r.name, r.is_system, count(rp.id)
             FROM users.roles r LEFT JOIN users.role_permissions rp ON rp.role_id = r.id
             GROUP BY r.name, r.is_system ORDER BY r.name",
            &[],
        )
        .await
        .unwrap();
    let summary: Vec<(String, bool, i64)> = roles
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        summary,
        [
            ("Admin".to_string(), true, 102),
            ("Editor".to_string(), true, 9 * 5 + 4 + 2), // no settings.view since migration 0003
            ("Moderator".to_string(), true, 5 + 8 + 4 + 2),
            ("Viewer".to_string(), true, 7 + 4),
        ]
    );
    let editor_can_publish: bool = db
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM users.role_permissions rp
                            JOIN users.roles r ON r.id = rp.role_id JOIN users.permissions p ON p.id = rp.permission_id
                            WHERE r.name = 'Editor' AND p.module = 'articles' AND p.publish_access)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(editor_can_publish);
}
