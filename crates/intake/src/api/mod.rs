//! The gRPC surface: authenticate, convert, call the application layer, map errors.

pub mod convert;

use fupin_platform::{Role, auth};
use fupin_proto::intake::v1::{self as pb, intake_service_server::IntakeService};
use tonic::{Request, Response, Status};

use crate::app::Intake;

pub struct IntakeApi(pub Intake);

type R<T> = Result<Response<T>, Status>;

fn ok<T>(r: Result<T, fupin_platform::ServiceError>) -> R<T> {
    r.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl IntakeService for IntakeApi {
    async fn submit_application(
        &self,
        req: Request<pb::SubmitApplicationRequest>,
    ) -> R<pb::Application> {
        let caller = auth::caller(&req)?;
        ok(self.0.submit(&caller, req.into_inner()).await)
    }

    async fn get_application(&self, req: Request<pb::GetApplicationRequest>) -> R<pb::Application> {
        let caller = auth::caller(&req)?;
        ok(self.0.get(&caller, &req.into_inner().id).await)
    }

    async fn list_applications(
        &self,
        req: Request<pb::ListApplicationsRequest>,
    ) -> R<pb::ListApplicationsResponse> {
        let caller = auth::caller(&req)?;
        ok(self.0.list(&caller, req.into_inner()).await)
    }

    async fn review_application(
        &self,
        req: Request<pb::ReviewApplicationRequest>,
    ) -> R<pb::Application> {
        let caller = auth::caller(&req)?;
        ok(self.0.review(&caller, req.into_inner()).await)
    }

    async fn resubmit_application(
        &self,
        req: Request<pb::ResubmitApplicationRequest>,
    ) -> R<pb::Application> {
        let caller = auth::caller(&req)?;
        ok(self.0.resubmit(&caller, req.into_inner()).await)
    }

    async fn list_transitions(
        &self,
        req: Request<pb::ListTransitionsRequest>,
    ) -> R<pb::ListTransitionsResponse> {
        let caller = auth::caller(&req)?;
        ok(self.0.transitions(&caller, req.into_inner()).await)
    }

    async fn file_objection(&self, req: Request<pb::FileObjectionRequest>) -> R<pb::Objection> {
        let caller = auth::caller(&req)?;
        ok(self.0.file_objection(&caller, req.into_inner()).await)
    }

    async fn list_objections(
        &self,
        req: Request<pb::ListObjectionsRequest>,
    ) -> R<pb::ListObjectionsResponse> {
        let caller = auth::caller(&req)?;
        ok(self.0.objections(&caller, req.into_inner()).await)
    }

    async fn resolve_objection(
        &self,
        req: Request<pb::ResolveObjectionRequest>,
    ) -> R<pb::Objection> {
        let caller = auth::caller(&req)?;
        ok(self.0.resolve_objection(&caller, req.into_inner()).await)
    }

    async fn recommend_to_bank(
        &self,
        req: Request<pb::RecommendToBankRequest>,
    ) -> R<pb::Application> {
        let caller = auth::caller(&req)?;
        ok(self.0.recommend(&caller, req.into_inner()).await)
    }

    async fn list_recommended_applications(
        &self,
        req: Request<pb::ListRecommendedApplicationsRequest>,
    ) -> R<pb::ListApplicationsResponse> {
        let caller = auth::caller(&req)?;
        ok(self.0.list_recommended(&caller, req.into_inner()).await)
    }

    async fn record_bank_decision(
        &self,
        req: Request<pb::RecordBankDecisionRequest>,
    ) -> R<pb::Application> {
        let caller = auth::caller(&req)?;
        ok(self.0.bank_decision(&caller, req.into_inner()).await)
    }

    async fn record_disbursement(
        &self,
        req: Request<pb::RecordDisbursementRequest>,
    ) -> R<pb::Application> {
        let caller = auth::caller(&req)?;
        ok(self.0.disburse(&caller, req.into_inner()).await)
    }

    async fn run_deadline_scan(
        &self,
        req: Request<pb::RunDeadlineScanRequest>,
    ) -> R<pb::RunDeadlineScanResponse> {
        let caller = auth::caller(&req)?;
        if !matches!(caller.role, Role::Operator | Role::DistrictStaff) {
            return Err(Status::permission_denied(
                "deadline scans are run by operators or the district center [R-IN-4]",
            ));
        }
        ok(self.0.run_deadline_scan(&caller, req.into_inner()).await)
    }

    async fn lodge_complaint(&self, req: Request<pb::LodgeComplaintRequest>) -> R<pb::Complaint> {
        let caller = auth::caller(&req)?;
        ok(self.0.lodge_complaint(&caller, req.into_inner()).await)
    }

    async fn assign_complaint(&self, req: Request<pb::AssignComplaintRequest>) -> R<pb::Complaint> {
        let caller = auth::caller(&req)?;
        ok(self.0.assign_complaint(&caller, req.into_inner()).await)
    }

    async fn answer_complaint(&self, req: Request<pb::AnswerComplaintRequest>) -> R<pb::Complaint> {
        let caller = auth::caller(&req)?;
        ok(self.0.answer_complaint(&caller, req.into_inner()).await)
    }

    async fn list_complaints(
        &self,
        req: Request<pb::ListComplaintsRequest>,
    ) -> R<pb::ListComplaintsResponse> {
        let caller = auth::caller(&req)?;
        ok(self.0.list_complaints(&caller, req.into_inner()).await)
    }
}
