//! pg_tests: Options: the wrapper, its validator, and every option it accepts or rejects.

#[pgrx::pg_schema]
mod tests {
    use crate::pg_tests::fixtures::*;
    use pgrx::prelude::*;

    #[pg_test]
    fn wrapper_handler_and_validator_exist() {
        let row = Spi::get_two::<String, String>(
            "SELECT fdwhandler::regproc::text, fdwvalidator::regproc::text FROM pg_foreign_data_wrapper WHERE fdwname = 'cyberbiz_fdw'",
        )
        .unwrap();
        assert_eq!(row, (Some("cyberbiz_fdw_handler".into()), Some("cyberbiz_fdw_validator".into())));
    }

    #[pg_test]
    fn server_user_mapping_and_table_accept_valid_options() {
        let url = sandbox_url();
        Spi::run(&format!(
            "CREATE SERVER sb FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '{url}', requests_per_second '5', page_size '50', timeout '10', max_retries '2', max_request_bytes '2048', time_zone 'Asia/Taipei', use_remote_estimate 'false')"
        ))
        .unwrap();
        Spi::run("CREATE USER MAPPING FOR CURRENT_USER SERVER sb OPTIONS (api_token 'a.b.c', app_secret 's')").unwrap();
        Spi::run("CREATE FOREIGN TABLE t_orders (id bigint, financial_status text OPTIONS (json_path 'statuses.financial_status')) SERVER sb OPTIONS (resource 'orders', rows '2500')").unwrap();
        Spi::run("CREATE FOREIGN TABLE t_blogs (id bigint, raw jsonb) SERVER sb OPTIONS (endpoint '/v1/blogs')").unwrap();
        let n = Spi::get_one::<i64>("SELECT count(*) FROM pg_foreign_table ft JOIN pg_foreign_server s ON s.oid = ft.ftserver WHERE s.srvname = 'sb'").unwrap();
        assert_eq!(n, Some(2));
        Spi::run("ALTER SERVER sb OPTIONS (SET page_size '10')").unwrap();
    }

    #[pg_test(error = "invalid option \"bogus\" for a CYBERBIZ server")]
    fn unknown_server_option_is_rejected() {
        Spi::run("CREATE SERVER s1 FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (bogus 'x')").unwrap();
    }

    #[pg_test(error = "invalid value for option \"page_size\": must be an integer from 1 to 50, got \"500\"")]
    fn page_size_above_api_maximum_is_rejected() {
        Spi::run("CREATE SERVER s2 FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (page_size '500')").unwrap();
    }

    #[pg_test(
        error = "invalid value for option \"requests_per_second\": must be a number of requests per second (the platform allows 5) from 0.1 to 5, got \"6\""
    )]
    fn requests_per_second_above_platform_limit_is_rejected() {
        Spi::run("CREATE SERVER s3 FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (requests_per_second '6')").unwrap();
    }

    #[pg_test(error = "invalid value for option \"api_url\": must be an http:// or https:// URL such as https://app-store-api.cyberbiz.io, got \"not-a-url\"")]
    fn non_url_api_url_is_rejected() {
        Spi::run("CREATE SERVER s4 FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url 'not-a-url')").unwrap();
    }

    #[pg_test(error = "invalid value for option \"timeout\": must be a number of seconds from 0.1 to 3600, got \"-5\"")]
    fn negative_timeout_is_rejected() {
        Spi::run("CREATE SERVER s5 FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (timeout '-5')").unwrap();
    }

    #[pg_test(error = "invalid value for option \"time_zone\": must be a time zone Postgres knows, such as Asia/Taipei, got \"Mars/Olympus\"")]
    fn unknown_time_zone_is_rejected() {
        Spi::run("CREATE SERVER s6 FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (time_zone 'Mars/Olympus')").unwrap();
    }

    #[pg_test(error = "option \"api_token\" is required for a CYBERBIZ user mapping")]
    fn user_mapping_without_token_is_rejected() {
        Spi::run("CREATE SERVER s7 FOREIGN DATA WRAPPER cyberbiz_fdw").unwrap();
        Spi::run("CREATE USER MAPPING FOR CURRENT_USER SERVER s7 OPTIONS (app_secret 'x')").unwrap();
    }

    #[pg_test(error = "option \"api_token\" is required for a CYBERBIZ user mapping")]
    fn dropping_the_token_is_rejected() {
        Spi::run("CREATE SERVER s8 FOREIGN DATA WRAPPER cyberbiz_fdw").unwrap();
        Spi::run("CREATE USER MAPPING FOR CURRENT_USER SERVER s8 OPTIONS (api_token 'a.b.c')").unwrap();
        Spi::run("ALTER USER MAPPING FOR CURRENT_USER SERVER s8 OPTIONS (DROP api_token)").unwrap();
    }

    #[pg_test(error = "invalid option \"resourse\" for a CYBERBIZ foreign table")]
    fn misspelled_table_option_is_rejected() {
        Spi::run("CREATE SERVER s9 FOREIGN DATA WRAPPER cyberbiz_fdw").unwrap();
        Spi::run("CREATE FOREIGN TABLE t9 (id bigint) SERVER s9 OPTIONS (resourse 'orders')").unwrap();
    }

    #[pg_test(error = "invalid value for option \"json_path\": must be dot-separated JSON keys such as statuses.financial_status, got \"statuses..x\"")]
    fn malformed_json_path_is_rejected() {
        Spi::run("CREATE SERVER s10 FOREIGN DATA WRAPPER cyberbiz_fdw").unwrap();
        Spi::run("CREATE FOREIGN TABLE t10 (x text OPTIONS (json_path 'statuses..x')) SERVER s10 OPTIONS (resource 'orders')").unwrap();
    }
}
