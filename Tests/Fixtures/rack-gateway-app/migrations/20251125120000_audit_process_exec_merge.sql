-- Exec commands join the deploy approval requests they belong to.
ALTER TABLE public.deploy_approval_requests ADD COLUMN exec_commands jsonb NOT NULL DEFAULT '[]'::jsonb;
CREATE INDEX audit_event_deploy_approval_idx ON audit.audit_event (deploy_approval_request_id)
    WHERE deploy_approval_request_id IS NOT NULL;
