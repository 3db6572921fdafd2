-- R-IN-6: a bank books one loan per loan account number. Risk control mirrors each loan and
-- the bank then reports repayments and status against it, so two loans of one bank on one
-- account number could not be told apart. Intake checks this before it writes (under a lock on
-- the bank's account number) and names the loan that holds it; this index is the last guard.
create unique index applications_bank_loan_account
    on applications (bank_id, (disbursement ->> 'loan_account_number'))
    where disbursement is not null;
