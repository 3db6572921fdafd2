-- R-IN-6: a bank books one loan per loan account number. Risk control mirrors each loan and
-- the bank then reports repayments and status against it, so two loans of one bank on one
-- account number could not be told apart. Intake checks this before it writes (under a lock on
-- the bank's account number) and names the loan that holds it; this index is the last guard.
--
-- Earlier versions did not check. Should a bank have booked two loans on one number, the
-- upgrade stops here naming them (README "Upgrading"): the bank says which is right, the
-- other row's disbursement is corrected, and intake is started again.
do $$
declare
    clashes text;
begin
    select string_agg(format('bank %s, account %s: applications %s', bank_id, account, ids), '; ')
      into clashes
      from (select bank_id, disbursement ->> 'loan_account_number' as account,
                   string_agg(id::text, ', ' order by id) as ids
              from applications
             where disbursement is not null
             group by 1, 2
            having count(*) > 1) d;
    if clashes is not null then
        raise exception 'R-IN-6: loan account numbers booked on more than one loan of a bank; correct them before upgrading: %', clashes;
    end if;
end $$;

create unique index applications_bank_loan_account
    on applications (bank_id, (disbursement ->> 'loan_account_number'))
    where disbursement is not null;
